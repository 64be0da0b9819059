package redis

import (
	"bytes"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// proxy is a TCP proxy in front of one Redis that a test can cut (connections reset,
// new ones closed at once) or freeze (connections stay open but nothing passes, as when
// a network path dies), and then restore, without touching the Redis that other tests
// share. It can also let a command through and drop the replies from then on
// (dropRepliesAfter).
type proxy struct {
	ln       net.Listener
	upstream string

	mu       sync.Mutex // guards the fields below
	state    proxyState // applied to new connections
	conns    map[*pipe]struct{}
	closed   bool
	deafenOn []byte // what a client sends that deafens its connection: "\r\nsubscribe\r\n"; nil: nothing
}

type proxyState int

const (
	proxyOpen   proxyState = iota // forwards
	proxyCut                      // closes every connection
	proxyFrozen                   // reads and drops everything
)

// pipe is one client connection and its upstream connection.
type pipe struct {
	client, server net.Conn
	frozen         bool // guarded by proxy.mu; a frozen pipe stays frozen
	deaf           bool // guarded by proxy.mu; the server's bytes are dropped, for good
}

// newProxy listens on a loopback port and forwards to upstream (host:port) until the
// test ends.
func newProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream, conns: map[*pipe]struct{}{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.serve(&wg) }()
	t.Cleanup(func() {
		p.mu.Lock()
		p.closed = true
		for c := range p.conns {
			c.client.Close()
			c.server.Close()
		}
		p.mu.Unlock()
		ln.Close()
		wg.Wait()
	})
	return p
}

// url returns redisURL with its host replaced by the proxy's address.
func (p *proxy) url(t *testing.T, redisURL string) string {
	t.Helper()
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// serve accepts connections until the listener closes; each pipe's goroutines are
// counted in wg.
func (p *proxy) serve(wg *sync.WaitGroup) {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		state, closed := p.state, p.closed
		p.mu.Unlock()
		if closed || state == proxyCut {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			client.Close()
			continue
		}
		// The state may have changed while dialing: decide under the lock that cut and
		// freeze take, so no connection slips past a cut.
		p.mu.Lock()
		if p.closed || p.state == proxyCut {
			p.mu.Unlock()
			client.Close()
			server.Close()
			continue
		}
		c := &pipe{client: client, server: server, frozen: p.state == proxyFrozen}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		wg.Add(2)
		go func() { defer wg.Done(); p.copy(c, server, client) }()
		go func() { defer wg.Done(); p.copy(c, client, server) }()
	}
}

// copy forwards from src to dst while c is not frozen, and drops what it reads while c
// is, or, from the server, while c is deaf. When src ends it closes both sides.
func (p *proxy) copy(c *pipe, dst, src net.Conn) {
	fromServer := src == c.server
	defer func() {
		c.client.Close()
		c.server.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if !fromServer && p.deafenOn != nil && bytes.Contains(bytes.ToLower(buf[:n]), p.deafenOn) {
				c.deaf = true // before the command is forwarded, so its reply is dropped too
			}
			drop := c.frozen || fromServer && c.deaf
			p.mu.Unlock()
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil { // EOF, a reset, or a close by cut or cleanup
			return
		}
	}
}

// cut closes every connection and makes the proxy close new ones at once.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = proxyCut
	for c := range p.conns {
		c.client.Close()
		c.server.Close()
	}
}

// freeze makes every current and new connection swallow what it receives, for good.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = proxyFrozen
	for c := range p.conns {
		c.frozen = true
	}
}

// dropRepliesAfter makes every connection, current or new, that sends command (a
// Redis command name, such as "subscribe") drop the server's bytes from then on, for
// good: Redis runs the command, and the client never hears back, as when the way back
// dies. It looks for the command's name as a RESP bulk string within each read from the
// client, whole, as go-redis's small writes arrive on loopback.
func (p *proxy) dropRepliesAfter(command string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deafenOn = []byte("\r\n" + strings.ToLower(command) + "\r\n")
}

// restore forwards new connections again, and ends dropRepliesAfter; frozen and deaf
// ones stay so.
func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = proxyOpen
	p.deafenOn = nil
}

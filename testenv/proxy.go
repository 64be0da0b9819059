package testenv

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards loopback TCP connections to a server until Cut, which drops every
// forwarded connection and turns new ones away (accepted and closed at once, as a
// server that went away) until Restore: a network failure between a process and one
// server, which leaves the server that other tests share alone. Its address stays the
// same throughout. DropRepliesAfter loses the way back instead, after a given request.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and the forwarding goroutines

	mu     sync.Mutex // guards cut, conns, deafOn and deaf
	cut    bool
	conns  map[net.Conn]struct{} // both ends of every forwarded connection
	deafOn []byte                // what a client sends that deafens its connection; nil: nothing
	deaf   map[net.Conn]bool     // client ends whose server's bytes are dropped, for good
}

// StartProxy listens on a free loopback port and forwards to target (host:port) until
// the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, deaf: map[net.Conn]bool{}}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr returns the host:port the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every forwarded connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore forwards new connections again, and ends DropRepliesAfter; connections it
// deafened stay so.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.deafOn = nil
}

// DropRepliesAfter makes every connection, current or new, whose client sends request
// (compared without case within each read, whole, as small writes arrive on loopback)
// drop what the server sends from then on, for good: the server gets the request and
// runs it, and the client never hears back, as when the way back dies. For Redis,
// "\r\nsubscribe\r\n" loses the confirmation of a SUBSCRIBE. Until Restore.
func (p *Proxy) DropRepliesAfter(request string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deafOn = bytes.ToLower([]byte(request))
}

// serve accepts until the listener closes.
func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.forward(c) })
	}
}

// forward copies between c and a new connection to the target until either side ends.
func (p *Proxy) forward(c net.Conn) {
	u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, u) {
		return
	}
	done := make(chan struct{})
	go func() {
		p.copy(u, c, c)
		u.Close()
		c.Close()
		close(done)
	}()
	p.copy(c, u, c)
	c.Close()
	u.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	delete(p.deaf, c)
	p.mu.Unlock()
}

// copy forwards from src to dst until either fails; client is the connection's
// client end, which DropRepliesAfter deafens.
func (p *Proxy) copy(dst, src, client net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if src == client && p.deafOn != nil && bytes.Contains(bytes.ToLower(buf[:n]), p.deafOn) {
				p.deaf[client] = true // before the request goes on, so its reply is dropped too
			}
			drop := src != client && p.deaf[client]
			p.mu.Unlock()
			if !drop {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// track records the ends of a connection, or closes them while the proxy is cut.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

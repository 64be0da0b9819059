package postgres_test

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// proxy forwards TCP connections from a loopback port to a target, so that a test can
// take a server away and bring it back, at the same address, without touching it.
type proxy struct {
	target string
	addr   string // host:port it listens on, the same after Up

	mu    sync.Mutex // guards ln and conns
	ln    net.Listener
	conns map[net.Conn]struct{} // both ends of every forwarded connection
	wg    sync.WaitGroup        // the accept loop and the copying goroutines
}

// startProxy listens on a free loopback port and forwards to target until the test ends.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: target, addr: ln.Addr().String()}
	p.serve(ln)
	t.Cleanup(p.Down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln, p.conns = ln, make(map[net.Conn]struct{})
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // Down closed the listener
			}
			p.wg.Go(func() { p.forward(c) })
		}
	})
}

// forward copies between c and a new connection to the target until either side ends.
func (p *proxy) forward(c net.Conn) {
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
		io.Copy(u, c)
		u.Close()
		c.Close()
		close(done)
	}()
	io.Copy(c, u)
	c.Close()
	u.Close()
	<-done
}

// track records the ends of a connection, or closes them when the proxy is down.
func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
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

// Down stops listening and cuts every forwarded connection, as a server that went away;
// it returns when every goroutine of the proxy has. Calling it again does nothing.
func (p *proxy) Down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// Up listens again on the same address, polling until the port is free again.
func (p *proxy) Up(t *testing.T) {
	t.Helper()
	poll(t, func() (bool, string) {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return false, fmt.Sprintf("proxy: listen again on %s: %v", p.addr, err)
		}
		p.serve(ln)
		return true, ""
	})
}

/*
Copyright 2026 Millimetric, Inc.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package pgtest

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of the server, which a test can cut to
// make the database unreachable for whoever connects through it, without
// stopping the server the package's other tests share, or black-hole, so
// that it stops answering while every connection stays open.
type Proxy struct {
	// Port is the proxy's port on 127.0.0.1.
	Port int

	mu sync.Mutex
	up bool
	// hole: nothing is passed on in either direction, and new connections
	// are accepted and then never answered.
	hole  bool
	conns []net.Conn
	// open counts the client connections through the proxy not closed yet.
	open int
}

// NewProxy starts a proxy to the server's port on 127.0.0.1; it stops when
// the test ends.
func (s *Server) NewProxy(t testing.TB) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Port: l.Addr().(*net.TCPAddr).Port, up: true}
	t.Cleanup(func() { _ = l.Close(); p.Cut() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if !p.up {
				p.mu.Unlock()
				_ = in.Close()
				continue
			}
			if p.hole {
				p.conns = append(p.conns, in)
				p.mu.Unlock()
				continue
			}
			out, err := net.Dial("tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
			if err != nil {
				p.mu.Unlock()
				_ = in.Close()
				continue
			}
			p.conns = append(p.conns, in, out)
			p.open++
			p.mu.Unlock()
			// The connection is over when both directions are.
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); p.pipe(out, in) }()
			go func() { defer wg.Done(); p.pipe(in, out) }()
			go func() { wg.Wait(); p.mu.Lock(); p.open--; p.mu.Unlock() }()
		}
	}()
	return p
}

// pipe copies from src to dst until either fails, dropping what it reads
// while the proxy is black-holed, then closes dst.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		hole := p.hole
		p.mu.Unlock()
		if n > 0 && !hole {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// BlackHole makes the database stop answering through the proxy, as a
// network that drops every packet would: what either side sends is
// dropped, connections stay open, and new ones are accepted and never
// answered, until Restore (or Cut).
func (p *Proxy) BlackHole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hole = true
}

// Cut closes every connection through the proxy and refuses new ones until
// Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = false
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up, p.hole = true, false
}

// Open is the number of connections through the proxy that neither end has
// closed yet: a client's pool holding connections shows here.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

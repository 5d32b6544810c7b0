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
// stopping the server the package's other tests share.
type Proxy struct {
	// Port is the proxy's port on 127.0.0.1.
	Port int

	mu    sync.Mutex
	up    bool
	conns []net.Conn
	// flowing is closed while bytes pass; BlackHole replaces it with an
	// open one, on which the copying goroutines wait.
	flowing chan struct{}
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
	p := &Proxy{Port: l.Addr().(*net.TCPAddr).Port, up: true, flowing: make(chan struct{})}
	close(p.flowing)
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
			go func() { defer wg.Done(); p.pipe(out, in); _ = out.Close() }()
			go func() { defer wg.Done(); p.pipe(in, out); _ = in.Close() }()
			go func() { wg.Wait(); p.mu.Lock(); p.open--; p.mu.Unlock() }()
		}
	}()
	return p
}

// pipe copies src to dst until either fails, holding each read while the
// proxy is a black hole.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			flowing := p.flowing
			p.mu.Unlock()
			<-flowing
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
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
	p.flow()
}

// BlackHole keeps every connection, and accepts new ones, but passes no
// byte either way until Restore or Cut: a network that drops packets
// instead of refusing them, where a client only learns of the outage from
// its own deadlines.
func (p *Proxy) BlackHole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flowing:
		p.flowing = make(chan struct{})
	default: // already a black hole
	}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = true
	p.flow()
}

// flow lets the held bytes go; p.mu is held.
func (p *Proxy) flow() {
	select {
	case <-p.flowing:
	default:
		close(p.flowing)
	}
}

// Open is the number of connections through the proxy that neither end has
// closed yet: a client's pool holding connections shows here.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

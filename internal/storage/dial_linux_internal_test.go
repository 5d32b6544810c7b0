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

package storage

import (
	"context"
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestConnectionsAreDialledWithATCPUserTimeout: the socket every connection
// to a database is made on carries TCP_USER_TIMEOUT, so a peer that
// vanished is given up on after TCPUserTimeout, not 15 minutes.
func TestConnectionsAreDialledWithATCPUserTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg, err := AdminConfig{Host: "127.0.0.1", Database: "events", Username: "admin", SSLMode: SSLModeDisable}.endpoint().connConfig()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := cfg.DialFunc(context.Background(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got, keepAlive int
	var sockErr error
	if err := raw.Control(func(fd uintptr) {
		got, sockErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
		if sockErr == nil {
			keepAlive, sockErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		}
	}); err != nil || sockErr != nil {
		t.Fatal(err, sockErr)
	}
	if got != int(TCPUserTimeout.Milliseconds()) || keepAlive != 1 {
		t.Errorf("TCP_USER_TIMEOUT %d ms, SO_KEEPALIVE %d; want %d ms and 1", got, keepAlive, TCPUserTimeout.Milliseconds())
	}
}

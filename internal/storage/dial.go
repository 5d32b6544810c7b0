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
	"net"
	"time"
)

// TCPUserTimeout is how long data sent on a connection to the database may
// stay unacknowledged before the kernel drops the connection (Linux's
// TCP_USER_TIMEOUT, libpq's tcp_user_timeout). Without it a connection
// whose peer vanished (a black-holed network, a failed-over host) is kept
// through about 15 minutes of retransmissions, and whatever waits on it
// waits as long: the retention job, an ingest pod, a pooled connection
// the operator would use next. Keep-alive probes, sent after
// keepAliveIdle without traffic, find an idle connection dead within
// about the same time.
const TCPUserTimeout = 30 * time.Second

// Keep-alive probing of idle connections: the first probe after
// keepAliveIdle, then every keepAliveInterval, and the connection is given
// up after keepAliveCount unanswered probes (or TCPUserTimeout, whichever
// comes first).
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
)

// dialer is how every connection to a database is dialled: within
// DefaultConnectTimeout, with keep-alive probes and TCPUserTimeout.
func dialer() *net.Dialer {
	return &net.Dialer{
		Timeout: DefaultConnectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
		},
		Control: setTCPUserTimeout,
	}
}

// Package fakeserver is what the module's fake vendor servers (vonagetest,
// infobiptest, twiliotest) share: an httptest server on loopback that
// counts its connections and whose Close releases held requests, and the
// delay and drop of a scripted fault.
package fakeserver

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"
)

// Server is an httptest server on 127.0.0.1.
type Server struct {
	*httptest.Server
	conns atomic.Int64
	done  chan struct{} // closed by Close, releasing held requests
}

// Start serves h. Close it when done.
func Start(h http.Handler) *Server {
	s := &Server{done: make(chan struct{})}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Server.Start()
	return s
}

// Connections returns how many TCP connections the server accepted.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// Close releases held requests, drops the clients' connections and shuts
// the server down.
func (s *Server) Close() {
	close(s.done)
	s.CloseClientConnections()
	s.Server.Close()
}

// Hold applies a fault's delay and drop to the request being served: it
// waits delay, or until the client gives up or the server is closed, and
// then, if drop, closes the connection without an answer. It reports
// whether the request is finished; false leaves the answer to the caller.
// A request released by Close gets no answer either: returning would give
// it one, an empty 200.
func (s *Server) Hold(w http.ResponseWriter, r *http.Request, delay time.Duration, drop bool) bool {
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-s.done:
			panic(http.ErrAbortHandler)
		}
	}
	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	}
	return false
}

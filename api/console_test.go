package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const rfbGreeting = "RFB 003.008\n"

// fakeVNC is a VM's VNC socket: it greets each client like qemu, then hands the connection
// to the test.
type fakeVNC struct {
	path  string
	conns chan net.Conn
}

func newFakeVNC(t testing.TB, greet bool) *fakeVNC {
	t.Helper()
	dir, err := os.MkdirTemp("", "lqvnc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	v := &fakeVNC{path: filepath.Join(dir, "vnc.sock"), conns: make(chan net.Conn, 8)}
	ln, err := net.Listen("unix", v.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if greet {
				c.Write([]byte(rfbGreeting))
			}
			v.conns <- c
		}
	}()
	return v
}

func (v *fakeVNC) next(t testing.TB) net.Conn {
	t.Helper()
	select {
	case c := <-v.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the proxy did not connect to the VNC socket")
		return nil
	}
}

// ticket asks for a console ticket for vm.
func (f *rtFixture) ticket(t testing.TB, vm string) ConsoleTicket {
	t.Helper()
	resp := f.do(t, "POST", "/api/v1/vms/"+vm+"/console-ticket", nil)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("console-ticket %s: %d %s", vm, resp.StatusCode, b)
	}
	var ct ConsoleTicket
	if err := json.NewDecoder(resp.Body).Decode(&ct); err != nil {
		t.Fatal(err)
	}
	return ct
}

// dial opens a console WebSocket at path (with its query) as a browser on origin would.
func (f *rtFixture) dial(t testing.TB, path, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.ts.URL, "http")+path,
		&websocket.DialOptions{HTTPHeader: h, Subprotocols: []string{"binary"}})
	if err == nil {
		t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, resp, err
}

func TestConsoleTicket(t *testing.T) {
	f := newRTFixture(t)
	f.consoles.add("web", &fakeVM{uuid: "u-web"})
	ct := f.ticket(t, "web")
	if len(ct.Ticket) < 40 {
		t.Errorf("ticket %q: too short to be 256 random bits", ct.Ticket)
	}
	if want := f.clock.Now().Add(ticketTTL); !ct.ExpiresAt.Equal(want) {
		t.Errorf("expires_at %v, want %v", ct.ExpiresAt, want)
	}
	if want := "/api/v1/vms/web/console?ticket=" + ct.Ticket; ct.VNCURL != want {
		t.Errorf("vnc_url %q, want %q", ct.VNCURL, want)
	}
	if want := "/api/v1/vms/web/serial?ticket=" + ct.Ticket; ct.SerialURL != want {
		t.Errorf("serial_url %q, want %q", ct.SerialURL, want)
	}
	if other := f.ticket(t, "web"); other.Ticket == ct.Ticket {
		t.Error("two tickets are the same")
	}

	tests := []struct {
		name, path, auth string
		status           int
		code             string
	}{
		{"unknown vm", "/api/v1/vms/nope/console-ticket", "Bearer " + f.token, http.StatusNotFound, CodeNotFound},
		{"no token", "/api/v1/vms/web/console-ticket", "", http.StatusUnauthorized, CodeUnauthorized},
		{"bad token", "/api/v1/vms/web/console-ticket", "Bearer lq_nope", http.StatusUnauthorized, CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", f.ts.URL+tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			checkErrorResponse(t, resp, tt.status, tt.code)
		})
	}
}

// checkErrorResponse checks a refusal: the status and a JSON error body with the code.
func checkErrorResponse(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	if resp == nil {
		t.Fatalf("no response; want %d %s", status, code)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d; body %s", resp.StatusCode, status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e Error
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("body %s: want error code %q with a message (%v)", b, code, err)
	}
}

// TestConsoleAdmission checks who may open a console WebSocket: refusals come before the
// upgrade, as JSON errors.
func TestConsoleAdmission(t *testing.T) {
	tests := []struct {
		name    string
		origins []string // configured extra origins
		// setup returns the path to open and the Origin to send.
		setup  func(t *testing.T, f *rtFixture) (path, origin string)
		status int // 101 for success
		code   string
	}{
		{"no origin (not a browser)", nil, func(t *testing.T, f *rtFixture) (string, string) {
			return f.ticket(t, "web").VNCURL, ""
		}, http.StatusSwitchingProtocols, ""},
		{"same origin", nil, func(t *testing.T, f *rtFixture) (string, string) {
			return f.ticket(t, "web").VNCURL, f.ts.URL
		}, http.StatusSwitchingProtocols, ""},
		{"configured origin", []string{"ui.example.com"}, func(t *testing.T, f *rtFixture) (string, string) {
			return f.ticket(t, "web").VNCURL, "https://ui.example.com"
		}, http.StatusSwitchingProtocols, ""},
		{"configured origin pattern with scheme", []string{"https://*.example.com"}, func(t *testing.T, f *rtFixture) (string, string) {
			return f.ticket(t, "web").SerialURL, "https://ui.example.com"
		}, http.StatusSwitchingProtocols, ""},
		{"foreign origin", nil, func(t *testing.T, f *rtFixture) (string, string) {
			return f.ticket(t, "web").VNCURL, "https://evil.example"
		}, http.StatusForbidden, CodeForbidden},
		{"foreign scheme for a scheme pattern", []string{"https://ui.example.com"}, func(t *testing.T, f *rtFixture) (string, string) {
			return f.ticket(t, "web").VNCURL, "http://ui.example.com"
		}, http.StatusForbidden, CodeForbidden},
		{"opaque origin", nil, func(t *testing.T, f *rtFixture) (string, string) {
			return f.ticket(t, "web").VNCURL, "null"
		}, http.StatusForbidden, CodeForbidden},
		{"missing ticket", nil, func(t *testing.T, f *rtFixture) (string, string) {
			return "/api/v1/vms/web/console", ""
		}, http.StatusUnauthorized, CodeUnauthorized},
		{"missing ticket, serial", nil, func(t *testing.T, f *rtFixture) (string, string) {
			return "/api/v1/vms/web/serial", ""
		}, http.StatusUnauthorized, CodeUnauthorized},
		{"unknown ticket", nil, func(t *testing.T, f *rtFixture) (string, string) {
			return "/api/v1/vms/web/console?ticket=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""
		}, http.StatusUnauthorized, CodeUnauthorized},
		{"expired ticket", nil, func(t *testing.T, f *rtFixture) (string, string) {
			ct := f.ticket(t, "web")
			f.clock.advance(ticketTTL)
			return ct.VNCURL, ""
		}, http.StatusUnauthorized, CodeUnauthorized},
		{"ticket used just before it expires", nil, func(t *testing.T, f *rtFixture) (string, string) {
			ct := f.ticket(t, "web")
			f.clock.advance(ticketTTL - time.Millisecond)
			return ct.VNCURL, ""
		}, http.StatusSwitchingProtocols, ""},
		{"reused ticket", nil, func(t *testing.T, f *rtFixture) (string, string) {
			ct := f.ticket(t, "web")
			ws, _, err := f.dial(t, ct.VNCURL, "")
			if err != nil {
				t.Fatalf("first use: %v", err)
			}
			ws.CloseNow()
			return ct.SerialURL, "" // the same ticket, for the other console
		}, http.StatusUnauthorized, CodeUnauthorized},
		{"refused use burns the ticket", nil, func(t *testing.T, f *rtFixture) (string, string) {
			ct := f.ticket(t, "web")
			if _, resp, err := f.dial(t, strings.Replace(ct.VNCURL, "/web/", "/db/", 1), ""); err == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong VM: %v", err)
			}
			return ct.VNCURL, ""
		}, http.StatusUnauthorized, CodeUnauthorized},
		{"ticket for another vm", nil, func(t *testing.T, f *rtFixture) (string, string) {
			return strings.Replace(f.ticket(t, "web").VNCURL, "/web/", "/db/", 1), ""
		}, http.StatusUnauthorized, CodeUnauthorized},
		{"vm re-created under the same name", nil, func(t *testing.T, f *rtFixture) (string, string) {
			ct := f.ticket(t, "web")
			f.consoles.add("web", &fakeVM{uuid: "u-web-2", vnc: newFakeVNC(t, true).path})
			return ct.VNCURL, ""
		}, http.StatusUnauthorized, CodeUnauthorized},
		{"token revoked since", nil, func(t *testing.T, f *rtFixture) (string, string) {
			ct := f.ticket(t, "web")
			if err := f.db.DeleteTokenByName(context.Background(), "admin"); err != nil {
				t.Fatal(err)
			}
			return ct.VNCURL, ""
		}, http.StatusUnauthorized, CodeUnauthorized},
		{"vm not running", nil, func(t *testing.T, f *rtFixture) (string, string) {
			return f.ticket(t, "off").VNCURL, ""
		}, http.StatusConflict, CodeConflict},
		{"vm gone", nil, func(t *testing.T, f *rtFixture) (string, string) {
			ct := f.ticket(t, "web")
			f.consoles.mu.Lock()
			delete(f.consoles.vms, "web")
			f.consoles.mu.Unlock()
			return ct.VNCURL, ""
		}, http.StatusNotFound, CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRTFixture(t, tt.origins...)
			f.consoles.add("web", &fakeVM{uuid: "u-web", vnc: newFakeVNC(t, true).path, serials: make(chan *fakeSerial, 4)})
			f.consoles.add("db", &fakeVM{uuid: "u-db", vnc: newFakeVNC(t, true).path})
			f.consoles.add("off", &fakeVM{uuid: "u-off"})
			path, origin := tt.setup(t, f)
			ws, resp, err := f.dial(t, path, origin)
			if tt.status == http.StatusSwitchingProtocols {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				if ws.Subprotocol() != "binary" {
					t.Errorf("subprotocol %q, want binary", ws.Subprotocol())
				}
				ws.Close(websocket.StatusNormalClosure, "")
				return
			}
			if err == nil {
				t.Fatalf("dial succeeded; want %d %s", tt.status, tt.code)
			}
			checkErrorResponse(t, resp, tt.status, tt.code)
		})
	}
}

// readBytes reads binary messages until it has n bytes.
func readBytes(t *testing.T, ws *websocket.Conn, n int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []byte
	for len(got) < n {
		typ, p, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", len(got), n, err)
		}
		if typ != websocket.MessageBinary {
			t.Fatalf("message type %v, want binary", typ)
		}
		got = append(got, p...)
	}
	return got
}

// expectClose reads until the WebSocket closes and checks the close status and reason.
func expectClose(t *testing.T, ws *websocket.Conn, status websocket.StatusCode, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := ws.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("WebSocket ended with %v, not a close frame", err)
		}
		if ce.Code != status || !strings.Contains(ce.Reason, reason) {
			t.Errorf("closed with %d %q, want %d and a reason with %q", ce.Code, ce.Reason, status, reason)
		}
		return
	}
}

func TestConsoleProxy(t *testing.T) {
	f := newRTFixture(t)
	vnc := newFakeVNC(t, true)
	f.consoles.add("web", &fakeVM{uuid: "u-web", vnc: vnc.path})
	ctx := context.Background()

	t.Run("frames both ways, then the VM side closes", func(t *testing.T) {
		ws, _, err := f.dial(t, f.ticket(t, "web").VNCURL, f.ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		vm := vnc.next(t)
		if got := readBytes(t, ws, len(rfbGreeting)); string(got) != rfbGreeting {
			t.Errorf("first message %q, want the RFB greeting", got)
		}
		hello := []byte("RFB 003.008\n\x01\x02")
		if err := ws.Write(ctx, websocket.MessageBinary, hello); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(hello))
		vm.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(vm, buf); err != nil || !bytes.Equal(buf, hello) {
			t.Errorf("VM got %q, %v; want %q", buf, err, hello)
		}
		big := bytes.Repeat([]byte{0xAB, 0x00, 0xCD}, 100_000) // a framebuffer update
		go vm.Write(big)
		if got := readBytes(t, ws, len(big)); !bytes.Equal(got, big) {
			t.Errorf("client got %d bytes, not the %d the VM sent", len(got), len(big))
		}
		vm.Close()
		expectClose(t, ws, websocket.StatusNormalClosure, "console socket ended")
	})

	t.Run("the browser closes", func(t *testing.T) {
		ws, _, err := f.dial(t, f.ticket(t, "web").VNCURL, "")
		if err != nil {
			t.Fatal(err)
		}
		vm := vnc.next(t)
		readBytes(t, ws, len(rfbGreeting))
		if err := ws.Close(websocket.StatusNormalClosure, "tab closed"); err != nil {
			t.Errorf("close: %v", err)
		}
		vm.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := vm.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("VM side read %d bytes, %v; want EOF", n, err)
		}
	})
}

func TestSerialConsole(t *testing.T) {
	f := newRTFixture(t)
	sessions := make(chan *fakeSerial, 4)
	f.consoles.add("web", &fakeVM{uuid: "u-web", serials: sessions})
	ctx := context.Background()
	open := func(t *testing.T) (*websocket.Conn, *fakeSerial) {
		ws, _, err := f.dial(t, f.ticket(t, "web").SerialURL, f.ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-sessions:
			return ws, s
		case <-time.After(5 * time.Second):
			t.Fatal("no serial session attached")
			return nil, nil
		}
	}
	tests := []struct {
		name   string
		end    error
		status websocket.StatusCode
		reason string
	}{
		{"the VM stops", io.EOF, websocket.StatusNormalClosure, "VM stopped"},
		{"the console fails", errors.New("broken pipe"), websocket.StatusInternalError, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, s := open(t)
			s.out <- []byte("login: ")
			if got := readBytes(t, ws, 7); string(got) != "login: " {
				t.Errorf("output %q", got)
			}
			for _, typ := range []websocket.MessageType{websocket.MessageText, websocket.MessageBinary} {
				if err := ws.Write(ctx, typ, []byte("root\n")); err != nil {
					t.Fatal(err)
				}
				select {
				case in := <-s.in:
					if string(in) != "root\n" {
						t.Errorf("input %q", in)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("%v input did not reach the session", typ)
				}
			}
			s.end <- tt.end
			expectClose(t, ws, tt.status, tt.reason)
			select {
			case <-s.closed:
			case <-time.After(5 * time.Second):
				t.Error("the session was not closed")
			}
		})
	}
	t.Run("the browser closes", func(t *testing.T) {
		ws, s := open(t)
		ws.Close(websocket.StatusNormalClosure, "")
		select {
		case <-s.closed:
		case <-time.After(5 * time.Second):
			t.Error("the session was not closed")
		}
	})
}

// BenchmarkConsoleRoundTrip compares a round trip through the WebSocket proxy with one on
// the unix socket directly, against an echo server standing in for the VM.
func BenchmarkConsoleRoundTrip(b *testing.B) {
	for _, size := range []int{64, 4096} {
		msg := bytes.Repeat([]byte("v"), size)
		b.Run(fmt.Sprintf("direct/%dB", size), func(b *testing.B) {
			vnc := newEchoVNC(b)
			c, err := net.Dial("unix", vnc)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, size)
			b.ResetTimer()
			for range b.N {
				c.Write(msg)
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("proxied/%dB", size), func(b *testing.B) {
			f := newRTFixture(b)
			f.consoles.add("web", &fakeVM{uuid: "u-web", vnc: newEchoVNC(b)})
			ws, _, err := f.dial(b, f.ticket(b, "web").VNCURL, "")
			if err != nil {
				b.Fatal(err)
			}
			ws.SetReadLimit(1 << 20)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if err := ws.Write(ctx, websocket.MessageBinary, msg); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < size; {
					_, p, err := ws.Read(ctx)
					if err != nil {
						b.Fatal(err)
					}
					got += len(p)
				}
			}
		})
	}
}

// newEchoVNC is a unix socket that echoes what it reads.
func newEchoVNC(b testing.TB) string {
	dir, err := os.MkdirTemp("", "lqecho")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "vnc.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return path
}

// TestShutdownEndsLiveResponses checks that http.Server.Shutdown is not held up by event
// streams, and that console WebSockets are closed with a reason.
func TestShutdownEndsLiveResponses(t *testing.T) {
	f := newRTFixture(t)
	vnc := newFakeVNC(t, true)
	sessions := make(chan *fakeSerial, 1)
	f.consoles.add("web", &fakeVM{uuid: "u-web", vnc: vnc.path, serials: sessions})
	stream := f.openStream(t, "", "")
	console, _, err := f.dial(t, f.ticket(t, "web").VNCURL, "")
	if err != nil {
		t.Fatal(err)
	}
	vnc.next(t)
	readBytes(t, console, len(rfbGreeting))
	serial, _, err := f.dial(t, f.ticket(t, "web").SerialURL, "")
	if err != nil {
		t.Fatal(err)
	}
	<-sessions

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := f.ts.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	select {
	case <-stream.done:
	case <-time.After(5 * time.Second):
		t.Error("the event stream is still open")
	}
	expectClose(t, console, websocket.StatusGoingAway, "shutting down")
	expectClose(t, serial, websocket.StatusGoingAway, "shutting down")
}

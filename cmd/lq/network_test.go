package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/limiquantix/limiquantix/api"
)

// netRequest is one request netLQD saw.
type netRequest struct {
	Method, Path, Body string
}

func (r netRequest) String() string { return strings.TrimSpace(r.Method + " " + r.Path + " " + r.Body) }

// netLQD is a fake lqd for the networking commands: networks, security groups with
// rules, and VM create/show. It records every request.
type netLQD struct {
	mu       sync.Mutex
	reqs     []netRequest
	networks []api.Network
	groups   []api.SecurityGroup
	vms      []api.VM
	badPorts map[int]bool // POST rule with one of these as port_from answers 400
	nextRule int
}

func (f *netLQD) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.reqs {
		out = append(out, r.String())
	}
	return out
}

func (f *netLQD) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	notFound := func(w http.ResponseWriter, what string) {
		writeTestJSON(w, 404, api.Error{Error: api.ErrorBody{Code: api.CodeNotFound, Message: what + " not found"}})
	}
	// decode decodes the body of the request being served (the last recorded).
	decode := func(w http.ResponseWriter, v any) bool {
		dec := json.NewDecoder(strings.NewReader(f.reqs[len(f.reqs)-1].Body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			writeTestJSON(w, 400, api.Error{Error: api.ErrorBody{Code: api.CodeBadRequest, Message: err.Error()}})
			return false
		}
		return true
	}
	group := func(name string) *api.SecurityGroup {
		for i := range f.groups {
			if f.groups[i].Name == name {
				return &f.groups[i]
			}
		}
		return nil
	}

	mux.HandleFunc("GET /api/v1/networks", func(w http.ResponseWriter, r *http.Request) { writeTestJSON(w, 200, f.networks) })
	mux.HandleFunc("POST /api/v1/networks", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateNetworkRequest
		if !decode(w, &req) {
			return
		}
		n := api.Network{Name: req.Name, Subnet: req.Subnet, Gateway: firstNonEmpty(req.Gateway, "10.20.0.1"), NAT: req.NAT,
			Bridge: "lqbr" + strconv.Itoa(len(f.networks))}
		f.networks = append(f.networks, n)
		writeTestJSON(w, 201, n)
	})
	mux.HandleFunc("GET /api/v1/networks/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, n := range f.networks {
			if n.Name == r.PathValue("name") {
				writeTestJSON(w, 200, n)
				return
			}
		}
		notFound(w, "network")
	})
	mux.HandleFunc("DELETE /api/v1/networks/{name}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })

	mux.HandleFunc("GET /api/v1/security-groups", func(w http.ResponseWriter, r *http.Request) { writeTestJSON(w, 200, f.groups) })
	mux.HandleFunc("POST /api/v1/security-groups", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateSecurityGroupRequest
		if !decode(w, &req) {
			return
		}
		g := api.SecurityGroup{Name: req.Name, Rules: []api.SecurityRule{}}
		f.groups = append(f.groups, g)
		writeTestJSON(w, 201, g)
	})
	mux.HandleFunc("GET /api/v1/security-groups/{name}", func(w http.ResponseWriter, r *http.Request) {
		if g := group(r.PathValue("name")); g != nil {
			writeTestJSON(w, 200, g)
			return
		}
		notFound(w, "security group")
	})
	mux.HandleFunc("DELETE /api/v1/security-groups/{name}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	mux.HandleFunc("POST /api/v1/security-groups/{name}/rules", func(w http.ResponseWriter, r *http.Request) {
		g := group(r.PathValue("name"))
		if g == nil {
			notFound(w, "security group")
			return
		}
		var rule api.SecurityRule
		if !decode(w, &rule) {
			return
		}
		if f.badPorts[rule.PortFrom] {
			writeTestJSON(w, 400, api.Error{Error: api.ErrorBody{Code: api.CodeInvalid, Message: fmt.Sprintf("port %d refused", rule.PortFrom)}})
			return
		}
		f.nextRule++
		rule.ID = "r" + strconv.Itoa(f.nextRule)
		g.Rules = append(g.Rules, rule)
		writeTestJSON(w, 201, rule)
	})
	mux.HandleFunc("DELETE /api/v1/security-groups/{name}/rules/{id}", func(w http.ResponseWriter, r *http.Request) {
		if g := group(r.PathValue("name")); g != nil {
			for i, rl := range g.Rules {
				if rl.ID == r.PathValue("id") {
					g.Rules = append(g.Rules[:i], g.Rules[i+1:]...)
					w.WriteHeader(204)
					return
				}
			}
		}
		notFound(w, "rule")
	})

	mux.HandleFunc("POST /api/v1/vms", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateVMRequest
		if !decode(w, &req) {
			return
		}
		writeTestJSON(w, 201, api.VM{Name: req.Name, Image: req.Image, State: "stopped"})
	})
	mux.HandleFunc("GET /api/v1/vms", func(w http.ResponseWriter, r *http.Request) { writeTestJSON(w, 200, f.vms) })
	mux.HandleFunc("GET /api/v1/vms/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, vm := range f.vms {
			if vm.Name == r.PathValue("name") {
				writeTestJSON(w, 200, vm)
				return
			}
		}
		notFound(w, "VM")
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+e2eToken {
			t.Errorf("%s %s: Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.reqs = append(f.reqs, netRequest{Method: r.Method, Path: r.URL.EscapedPath(), Body: strings.TrimSpace(string(body))})
		mux.ServeHTTP(w, r)
	})
}

// serve starts f on an httptest server closed at the end of the test.
func (f *netLQD) serve(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(f.handler(t))
	t.Cleanup(srv.Close)
	return srv
}

func TestNetworkCreateListShow(t *testing.T) {
	lqd := &netLQD{}
	srv := lqd.serve(t)

	steps := []struct {
		args       []string
		wantCode   int
		wantStdout string // exact unless wantPrefix
		wantPrefix bool
		wantReq    []string // requests this step sent
	}{
		{
			args: []string{"network", "create", "prod", "--subnet", "10.20.0.0/24", "--nat"},
			wantStdout: "" +
				"name:     prod\n" +
				"subnet:   10.20.0.0/24\n" +
				"gateway:  10.20.0.1\n" +
				"nat:      yes\n" +
				"bridge:   lqbr0\n" +
				"nics:     0\n",
			wantReq: []string{`POST /api/v1/networks {"name":"prod","subnet":"10.20.0.0/24","nat":true}`},
		},
		{
			args:       []string{"network", "create", "backend", "--subnet", "10.30.0.0/24", "--gateway", "10.30.0.254", "-o", "json"},
			wantStdout: "{\n  \"name\": \"backend\",\n",
			wantPrefix: true,
			wantReq:    []string{`POST /api/v1/networks {"name":"backend","subnet":"10.30.0.0/24","gateway":"10.30.0.254"}`},
		},
		{
			args: []string{"network", "list"},
			wantStdout: "" +
				"NAME     SUBNET        GATEWAY      NAT  BRIDGE  NICS\n" +
				"backend  10.30.0.0/24  10.30.0.254  no   lqbr1   0\n" +
				"prod     10.20.0.0/24  10.20.0.1    yes  lqbr0   0\n",
			wantReq: []string{"GET /api/v1/networks"},
		},
		{
			args:       []string{"network", "show", "prod"},
			wantStdout: "name:     prod\n",
			wantPrefix: true,
			wantReq:    []string{"GET /api/v1/networks/prod"},
		},
		{
			args:     []string{"network", "delete", "prod"},
			wantReq:  []string{"DELETE /api/v1/networks/prod"},
			wantCode: 0,
		},
		{args: []string{"network", "create", "x"}, wantCode: 2},                       // no --subnet
		{args: []string{"network", "create", "--subnet", "10.0.0.0/24"}, wantCode: 2}, // no NAME
		{args: []string{"network", "show", "nope"}, wantCode: 1, wantReq: []string{"GET /api/v1/networks/nope"}},
	}
	for _, st := range steps {
		before := len(lqd.requests())
		code, stdout, stderr := runLQ(t, srv, "", st.args...)
		if code != st.wantCode {
			t.Fatalf("lq %s: exit %d, want %d; stderr %q", strings.Join(st.args, " "), code, st.wantCode, stderr)
		}
		if st.wantPrefix && !strings.HasPrefix(stdout, st.wantStdout) || !st.wantPrefix && st.wantCode == 0 && stdout != st.wantStdout {
			t.Errorf("lq %s: stdout =\n%s\nwant\n%s", strings.Join(st.args, " "), stdout, st.wantStdout)
		}
		if got := lqd.requests()[before:]; !reflect.DeepEqual(got, st.wantReq) && (len(got) != 0 || len(st.wantReq) != 0) {
			t.Errorf("lq %s: requests %q, want %q", strings.Join(st.args, " "), got, st.wantReq)
		}
	}

	code, stdout, _ := runLQ(t, srv, "", "network", "list", "-o", "json")
	var got []api.Network
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || len(got) != 2 || got[0].Name != "prod" || !got[0].NAT {
		t.Errorf("network list -o json: exit %d, err %v, %+v", code, err, got)
	}

	// An empty list is [] in JSON, not null.
	empty := (&netLQD{}).serve(t)
	if _, stdout, _ := runLQ(t, empty, "", "network", "list", "-o", "json"); stdout != "[]\n" {
		t.Errorf("empty network list -o json = %q, want []", stdout)
	}
}

func TestParseNICSpec(t *testing.T) {
	tests := []struct {
		spec    string
		want    api.NICRequest
		wantErr string // substring; "" = success
	}{
		{spec: "prod", want: api.NICRequest{Network: "prod"}},
		{spec: "prod,sg=web", want: api.NICRequest{Network: "prod", SecurityGroups: []string{"web"}}},
		{spec: "backend,ip=10.30.0.5,sg=a,sg=b", want: api.NICRequest{Network: "backend", IP: "10.30.0.5", SecurityGroups: []string{"a", "b"}}},
		{spec: "prod, sg=a ,sg=a", want: api.NICRequest{Network: "prod", SecurityGroups: []string{"a"}}},
		{spec: "prod,sg=b,ip=10.0.0.9", want: api.NICRequest{Network: "prod", IP: "10.0.0.9", SecurityGroups: []string{"b"}}},
		{spec: "", wantErr: "no network"},
		{spec: ",sg=web", wantErr: "no network"},
		{spec: "ip=10.0.0.5", wantErr: "the network comes first"},
		{spec: "prod,web", wantErr: `"web" is not KEY=VALUE`},
		{spec: "prod,sg=", wantErr: "sg has no value"},
		{spec: "prod,ip=10.0.0.300", wantErr: "not an IP address"},
		{spec: "prod,ip=10.0.0.5,ip=10.0.0.6", wantErr: "ip given twice"},
		{spec: "prod,mac=52:54:00:00:00:01", wantErr: `unknown key "mac"`},
		{spec: "prod,", wantErr: `"" is not KEY=VALUE`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := parseNICSpec(tt.spec)
			if tt.wantErr != "" {
				var ue usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("= %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestVMCreateNICs(t *testing.T) {
	tests := []struct {
		name     string
		flags    []string
		wantCode int
		wantBody string // the POST body; "" = no request
	}{
		{
			name:     "no flag: no nics field, the default network",
			wantBody: `{"name":"web1","image":"debian-12"}`,
		},
		{
			name:     "--no-nic: nics []",
			flags:    []string{"--no-nic"},
			wantBody: `{"name":"web1","image":"debian-12","nics":[]}`,
		},
		{
			name:     "one --nic",
			flags:    []string{"--nic", "prod,sg=web"},
			wantBody: `{"name":"web1","image":"debian-12","nics":[{"network":"prod","security_groups":["web"]}]}`,
		},
		{
			name:  "two --nic in order",
			flags: []string{"--nic", "prod,sg=web", "--nic", "backend,ip=10.30.0.5,sg=a,sg=b"},
			wantBody: `{"name":"web1","image":"debian-12","nics":[{"network":"prod","security_groups":["web"]},` +
				`{"network":"backend","ip":"10.30.0.5","security_groups":["a","b"]}]}`,
		},
		{name: "--nic and --no-nic", flags: []string{"--nic", "prod", "--no-nic"}, wantCode: 2},
		{name: "bad --nic", flags: []string{"--nic", "prod,colour=red"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lqd := &netLQD{}
			srv := lqd.serve(t)
			code, _, stderr := runLQ(t, srv, "", append([]string{"vm", "create", "web1", "--image", "debian-12"}, tt.flags...)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr)
			}
			var want []string
			if tt.wantBody != "" {
				want = []string{"POST /api/v1/vms " + tt.wantBody}
			}
			if got := lqd.requests(); !reflect.DeepEqual(got, want) {
				t.Errorf("requests = %q, want %q", got, want)
			}
		})
	}
}

func testNICVM() api.VM {
	created := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	return api.VM{
		Name: "web1", State: "running", CPUs: 1, MemoryMiB: 512, Image: "debian-12", RestartPolicy: "never", CreatedAt: created,
		NICs: []api.NIC{
			{Network: "prod", MAC: "52:54:00:00:00:01", IP: "10.20.0.5", Tap: "lqt0", SecurityGroups: []string{"web", "ssh"},
				GuestIPs: []string{"10.20.0.5/24", "fe80::5054:ff:fe00:1/64"}},
			{Network: "backend", MAC: "52:54:00:00:00:02", IP: "10.30.0.5", Tap: "lqt1"},
		},
		Guest: &api.Guest{Interfaces: []api.GuestInterface{
			{Name: "lo", IPs: []string{"127.0.0.1/8"}},
			{Name: "eth0", MAC: "52:54:00:00:00:01", IPs: []string{"10.20.0.5/24", "fe80::5054:ff:fe00:1/64"}},
			{Name: "docker0", IPs: []string{"172.17.0.1/16"}},
		}},
	}
}

func TestVMShowNICs(t *testing.T) {
	lqd := &netLQD{vms: []api.VM{testNICVM()}}
	srv := lqd.serve(t)
	code, stdout, stderr := runLQ(t, srv, "", "vm", "show", "web1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Compared without the alignment, which depends on the longest key.
	var nicLines []string
	for line := range strings.Lines(stdout) {
		if strings.HasPrefix(line, "nic") {
			nicLines = append(nicLines, strings.Join(strings.Fields(line), " "))
		}
	}
	wantLines := []string{
		"nic0: network=prod mac=52:54:00:00:00:01 ip=10.20.0.5 guest_ips=10.20.0.5/24,fe80::5054:ff:fe00:1/64 sg=web,ssh tap=lqt0",
		"nic1: network=backend mac=52:54:00:00:00:02 ip=10.30.0.5 tap=lqt1",
	}
	if !reflect.DeepEqual(nicLines, wantLines) {
		t.Errorf("vm show NIC lines:\n%s\nwant\n%s\nin\n%s", strings.Join(nicLines, "\n"), strings.Join(wantLines, "\n"), stdout)
	}

	code, stdout, _ = runLQ(t, srv, "", "vm", "show", "web1", "-o", "json")
	var vm api.VM
	if err := json.Unmarshal([]byte(stdout), &vm); code != 0 || err != nil || !reflect.DeepEqual(vm.NICs, testNICVM().NICs) {
		t.Errorf("vm show -o json: exit %d, err %v, nics %+v", code, err, vm.NICs)
	}

	code, stdout, _ = runLQ(t, srv, "", "vm", "list")
	if want := "10.20.0.5,fe80::5054:ff:fe00:1,10.30.0.5\n"; code != 0 || !strings.HasSuffix(stdout, want) {
		t.Errorf("vm list = %q, want IPS %q", stdout, want)
	}
}

func TestVMIPs(t *testing.T) {
	guest := &api.Guest{Interfaces: []api.GuestInterface{{Name: "eth0", IPs: []string{"192.168.1.9/24"}}}}
	tests := []struct {
		name string
		vm   api.VM
		want []string
	}{
		{"nothing", api.VM{}, nil},
		{"no NICs: the guest's interfaces", api.VM{Guest: guest}, []string{"192.168.1.9"}},
		{"IPAM only", api.VM{NICs: []api.NIC{{IP: "10.20.0.5"}}, Guest: guest}, []string{"10.20.0.5"}},
		{
			"guest IPs before IPAM, per NIC",
			api.VM{NICs: []api.NIC{{IP: "10.20.0.5", GuestIPs: []string{"10.20.0.7/24", "127.0.0.1/8"}}, {IP: "10.30.0.5"}}, Guest: guest},
			[]string{"10.20.0.7", "10.30.0.5"},
		},
		{"NICs without addresses: the guest's", api.VM{NICs: []api.NIC{{Network: "prod"}}, Guest: guest}, []string{"192.168.1.9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := vmIPs(tt.vm); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("vmIPs = %q, want %q", got, tt.want)
			}
		})
	}
}

package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/limiquantix/limiquantix/api"
)

func TestSGRuleAdd(t *testing.T) {
	const post = "POST /api/v1/security-groups/web/rules "
	tests := []struct {
		name       string
		flags      []string // after lq sg rule add web
		badPorts   []int
		wantCode   int
		wantStdout string
		wantStderr string // substring
		wantReqs   []string
		wantRules  []string // IDs left in the group
	}{
		{
			name:       "port list: one rule each",
			flags:      []string{"--in", "--proto", "tcp", "--port", "80,443", "--from", "0.0.0.0/0"},
			wantStdout: "r1\nr2\n",
			wantReqs: []string{
				post + `{"direction":"in","proto":"tcp","port_from":80,"port_to":80,"cidr":"0.0.0.0/0"}`,
				post + `{"direction":"in","proto":"tcp","port_from":443,"port_to":443,"cidr":"0.0.0.0/0"}`,
			},
			wantRules: []string{"r1", "r2"},
		},
		{
			name:       "range, in by default",
			flags:      []string{"--proto", "tcp", "--port", "8000-8100", "--from", "10.20.0.0/24"},
			wantStdout: "r1\n",
			wantReqs:   []string{post + `{"direction":"in","proto":"tcp","port_from":8000,"port_to":8100,"cidr":"10.20.0.0/24"}`},
			wantRules:  []string{"r1"},
		},
		{
			name:       "second port fails: the first is removed again",
			flags:      []string{"--in", "--proto", "tcp", "--port", "80,444"},
			badPorts:   []int{444},
			wantCode:   1,
			wantStderr: "lq: rule for port 444: invalid: port 444 refused (HTTP 400); removed the 1 rule(s) already added (r1)\n",
			wantReqs: []string{
				post + `{"direction":"in","proto":"tcp","port_from":80,"port_to":80,"cidr":"0.0.0.0/0"}`,
				post + `{"direction":"in","proto":"tcp","port_from":444,"port_to":444,"cidr":"0.0.0.0/0"}`,
				"DELETE /api/v1/security-groups/web/rules/r1",
			},
		},
		{
			name:       "third fails: two removed, the fourth never sent",
			flags:      []string{"--proto", "udp", "--port", "53,54,99,100"},
			badPorts:   []int{99},
			wantCode:   1,
			wantStderr: "removed the 2 rule(s) already added (r1 r2)",
			wantReqs: []string{
				post + `{"direction":"in","proto":"udp","port_from":53,"port_to":53,"cidr":"0.0.0.0/0"}`,
				post + `{"direction":"in","proto":"udp","port_from":54,"port_to":54,"cidr":"0.0.0.0/0"}`,
				post + `{"direction":"in","proto":"udp","port_from":99,"port_to":99,"cidr":"0.0.0.0/0"}`,
				"DELETE /api/v1/security-groups/web/rules/r1",
				"DELETE /api/v1/security-groups/web/rules/r2",
			},
		},
		{
			name:       "single rule fails: the API's error as is",
			flags:      []string{"--proto", "tcp", "--port", "444"},
			badPorts:   []int{444},
			wantCode:   1,
			wantStderr: "lq: invalid: port 444 refused (HTTP 400)\n",
			wantReqs:   []string{post + `{"direction":"in","proto":"tcp","port_from":444,"port_to":444,"cidr":"0.0.0.0/0"}`},
		},
		{
			name:       "icmp from a group",
			flags:      []string{"--in", "--proto", "icmp", "--from-group", "web"},
			wantStdout: "r1\n",
			wantReqs:   []string{post + `{"direction":"in","proto":"icmp","from_group":"web"}`},
			wantRules:  []string{"r1"},
		},
		{
			name:       "egress with --from",
			flags:      []string{"--out", "--proto", "udp", "--port", "53", "--from", "10.0.0.0/8"},
			wantStdout: "r1\n",
			wantReqs:   []string{post + `{"direction":"out","proto":"udp","port_from":53,"port_to":53,"cidr":"10.0.0.0/8"}`},
			wantRules:  []string{"r1"},
		},
		{
			name:       "egress with --to",
			flags:      []string{"--out", "--proto", "any", "--to", "10.0.0.0/8"},
			wantStdout: "r1\n",
			wantReqs:   []string{post + `{"direction":"out","proto":"any","cidr":"10.0.0.0/8"}`},
			wantRules:  []string{"r1"},
		},
		{
			name:       "json",
			flags:      []string{"--proto", "tcp", "--port", "22", "-o", "json"},
			wantStdout: "[\n  {\n    \"id\": \"r1\",\n    \"direction\": \"in\",\n    \"proto\": \"tcp\",\n    \"port_from\": 22,\n    \"port_to\": 22,\n    \"cidr\": \"0.0.0.0/0\"\n  }\n]\n",
			wantReqs:   []string{post + `{"direction":"in","proto":"tcp","port_from":22,"port_to":22,"cidr":"0.0.0.0/0"}`},
			wantRules:  []string{"r1"},
		},
		{name: "no --proto", flags: []string{"--port", "80"}, wantCode: 2, wantStderr: "--proto is required"},
		{name: "bad --proto", flags: []string{"--proto", "sctp"}, wantCode: 2, wantStderr: `--proto "sctp"`},
		{name: "--in and --out", flags: []string{"--in", "--out", "--proto", "tcp"}, wantCode: 2, wantStderr: "exclude each other"},
		{name: "--from and --from-group", flags: []string{"--proto", "tcp", "--from", "10.0.0.0/8", "--from-group", "web"}, wantCode: 2, wantStderr: "exclude each other"},
		{name: "--from and --to", flags: []string{"--proto", "tcp", "--from", "10.0.0.0/8", "--to", "10.0.0.0/8"}, wantCode: 2, wantStderr: "give one"},
		{name: "port with icmp", flags: []string{"--proto", "icmp", "--port", "22"}, wantCode: 2, wantStderr: "tcp and udp only"},
		{name: "empty port element", flags: []string{"--proto", "tcp", "--port", "80,"}, wantCode: 2, wantStderr: `--port "80,"`},
		{name: "port out of range", flags: []string{"--proto", "tcp", "--port", "80,65536"}, wantCode: 2, wantStderr: "1 to 65535"},
		{name: "reversed range", flags: []string{"--proto", "tcp", "--port", "9000-8000"}, wantCode: 2, wantStderr: "above the last"},
		{name: "open range", flags: []string{"--proto", "tcp", "--port", "8000-"}, wantCode: 2, wantStderr: `"8000-"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lqd := &netLQD{groups: []api.SecurityGroup{{Name: "web", Rules: []api.SecurityRule{}}}, badPorts: map[int]bool{}}
			for _, p := range tt.badPorts {
				lqd.badPorts[p] = true
			}
			srv := lqd.serve(t)
			code, stdout, stderr := runLQ(t, srv, "", append([]string{"sg", "rule", "add", "web"}, tt.flags...)...)
			if code != tt.wantCode || stdout != tt.wantStdout || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			if tt.wantStderr == "" && stderr != "" {
				t.Errorf("stderr %q, want none", stderr)
			}
			if got := lqd.requests(); !reflect.DeepEqual(got, tt.wantReqs) {
				t.Errorf("requests:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.wantReqs, "\n"))
			}
			var left []string
			for _, r := range lqd.groups[0].Rules {
				left = append(left, r.ID)
			}
			if !reflect.DeepEqual(left, tt.wantRules) {
				t.Errorf("rules left in the group = %q, want %q", left, tt.wantRules)
			}
		})
	}
}

func TestSGRuleRemove(t *testing.T) {
	newLQD := func() *netLQD {
		return &netLQD{groups: []api.SecurityGroup{{Name: "web", Rules: []api.SecurityRule{
			{ID: "r1", Direction: "in", Proto: "icmp"}, {ID: "r2", Direction: "in", Proto: "any"}, {ID: "r3", Direction: "out", Proto: "any"},
		}}}}
	}
	tests := []struct {
		name       string
		ids        []string
		wantCode   int
		wantStderr string
		wantLeft   []string
	}{
		{name: "two", ids: []string{"r1", "r3"}, wantLeft: []string{"r2"}},
		{name: "an unknown one does not stop the others", ids: []string{"r1", "nope", "r2"}, wantCode: 1,
			wantStderr: "lq: not_found: rule not found (HTTP 404)\n", wantLeft: []string{"r3"}},
		{name: "no ID", wantCode: 2, wantStderr: "lq: sg rule remove takes GROUP and at least one RULE_ID; got 1 argument(s)\n",
			wantLeft: []string{"r1", "r2", "r3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lqd := newLQD()
			srv := lqd.serve(t)
			code, _, stderr := runLQ(t, srv, "", append([]string{"sg", "rule", "remove", "web"}, tt.ids...)...)
			if code != tt.wantCode || !strings.HasPrefix(stderr, tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, stderr, tt.wantCode, tt.wantStderr)
			}
			var left []string
			for _, r := range lqd.groups[0].Rules {
				left = append(left, r.ID)
			}
			if !reflect.DeepEqual(left, tt.wantLeft) {
				t.Errorf("rules left = %q, want %q", left, tt.wantLeft)
			}
		})
	}
}

func TestSGCreateListShow(t *testing.T) {
	lqd := &netLQD{groups: []api.SecurityGroup{{Name: "web", Rules: []api.SecurityRule{
		{ID: "r1", Direction: "in", Proto: "tcp", PortFrom: 80, PortTo: 80, CIDR: "0.0.0.0/0"},
		{ID: "r2", Direction: "in", Proto: "tcp", PortFrom: 8000, PortTo: 8100, CIDR: "10.20.0.0/24"},
		{ID: "r3", Direction: "in", Proto: "icmp", FromGroup: "web"},
		{ID: "r4", Direction: "out", Proto: "udp", CIDR: "10.0.0.0/8"},
	}}}}
	srv := lqd.serve(t)

	tests := []struct {
		args       []string
		wantStdout string
		wantReq    string
	}{
		{
			args: []string{"sg", "show", "web"},
			wantStdout: "" +
				"ID  DIR  PROTO  PORTS      PEER\n" +
				"r1  in   tcp    80         0.0.0.0/0\n" +
				"r2  in   tcp    8000-8100  10.20.0.0/24\n" +
				"r3  in   icmp   -          sg:web\n" +
				"r4  out  udp    any        10.0.0.0/8\n",
			wantReq: "GET /api/v1/security-groups/web",
		},
		{
			args:       []string{"sg", "create", "db"},
			wantStdout: "ID  DIR  PROTO  PORTS  PEER\n",
			wantReq:    `POST /api/v1/security-groups {"name":"db"}`,
		},
		{
			args:       []string{"sg", "create", "cache", "-o", "json"},
			wantStdout: "{\n  \"name\": \"cache\",\n  \"rules\": []\n}\n",
			wantReq:    `POST /api/v1/security-groups {"name":"cache"}`,
		},
		{
			args: []string{"sg", "list"},
			wantStdout: "" +
				"NAME   RULES  IN  OUT\n" +
				"cache  0      0   0\n" +
				"db     0      0   0\n" +
				"web    4      3   1\n",
			wantReq: "GET /api/v1/security-groups",
		},
		{
			args:    []string{"sg", "delete", "db"},
			wantReq: "DELETE /api/v1/security-groups/db",
		},
	}
	for _, tt := range tests {
		before := len(lqd.requests())
		code, stdout, stderr := runLQ(t, srv, "", tt.args...)
		if code != 0 || stdout != tt.wantStdout {
			t.Errorf("lq %s: exit %d, stderr %q, stdout =\n%s\nwant\n%s", strings.Join(tt.args, " "), code, stderr, stdout, tt.wantStdout)
		}
		if got := lqd.requests()[before:]; len(got) != 1 || got[0] != tt.wantReq {
			t.Errorf("lq %s: requests %q, want %q", strings.Join(tt.args, " "), got, tt.wantReq)
		}
	}

	code, stdout, _ := runLQ(t, srv, "", "sg", "show", "web", "-o", "json")
	var g api.SecurityGroup
	if err := json.Unmarshal([]byte(stdout), &g); code != 0 || err != nil || !reflect.DeepEqual(g, lqd.groups[0]) {
		t.Errorf("sg show -o json: exit %d, err %v, %+v", code, err, g)
	}
}

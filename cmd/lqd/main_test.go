package main

import (
	"reflect"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(c config) any
		want    any
		wantErr bool
	}{
		{"defaults", nil, nil, func(c config) any {
			return []any{c.dataDir, c.runDir, c.listen, c.accel, c.firewall, c.defaultNetwork, c.reconcileEvery, c.backupDirs}
		}, []any{"/var/lib/limiquantix", "/run/limiquantix", "127.0.0.1:7480", "auto", "nft", "10.87.0.0/24", 30 * time.Second, []string{"/var/lib/limiquantix/backups"}}, false},
		{"env fills in", map[string]string{"LQ_DATA_DIR": "/srv/lq", "LQ_ACCEL": "tcg", "LQ_CONSOLE_ORIGIN": "ui.example.com, *.corp.example", "LQ_RECONCILE_INTERVAL": "5s"}, nil,
			func(c config) any { return []any{c.dataDir, c.accel, c.consoleOrigins, c.reconcileEvery, c.backupDirs} },
			[]any{"/srv/lq", "tcg", []string{"ui.example.com", "*.corp.example"}, 5 * time.Second, []string{"/srv/lq/backups"}}, false},
		{"flags win over env", map[string]string{"LQ_LISTEN": "0.0.0.0:1"}, []string{"--listen", "127.0.0.1:9", "--console-origin", "a.example", "--console-origin", "b.example,c.example"},
			func(c config) any { return []any{c.listen, c.consoleOrigins} },
			[]any{"127.0.0.1:9", []string{"a.example", "b.example", "c.example"}}, false},
		{"relative backup dir refused", nil, []string{"--backup-dir", "backups"}, nil, nil, true},
		{"stray argument refused", nil, []string{"extra"}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"LQ_DATA_DIR", "LQ_RUN_DIR", "LQ_LISTEN", "LQ_ACCEL", "LQ_FIREWALL", "LQ_DEFAULT_NETWORK", "LQ_CONSOLE_ORIGIN", "LQ_RECONCILE_INTERVAL", "LQ_BACKUP_DIR"} {
				t.Setenv(k, tt.env[k])
			}
			c, err := parseFlags(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

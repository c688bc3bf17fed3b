package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Where lq finds lqd when neither flags nor environment say.
const (
	defaultDataDir = "/var/lib/limiquantix"
	defaultURL     = "http://127.0.0.1:7480"
	urlFile        = "api.url"     // in the data dir: lqd's URL, one line
	tokenFile      = "admin.token" // in the data dir: the admin token, one line
)

// config is where lq sends requests and how it authenticates.
type config struct {
	URL   string
	Token string
}

// resolveConfig picks the URL and token: flags, then LQ_URL/LQ_TOKEN, then the local lqd's
// files in LQ_DATA_DIR (default /var/lib/limiquantix), then the default URL. There is no
// default token.
func resolveConfig(flagURL, flagToken string, getenv func(string) string) (config, error) {
	dataDir := getenv("LQ_DATA_DIR")
	if dataDir == "" {
		dataDir = defaultDataDir
	}

	var cfg config
	cfg.URL = firstNonEmpty(flagURL, getenv("LQ_URL"))
	if cfg.URL == "" {
		// Not secret and not required: an unreadable file means the default.
		if line, err := readLine(filepath.Join(dataDir, urlFile)); err == nil {
			cfg.URL = line
		}
	}
	if cfg.URL == "" {
		cfg.URL = defaultURL
	}
	cfg.URL = normalizeURL(cfg.URL)

	cfg.Token = firstNonEmpty(flagToken, getenv("LQ_TOKEN"))
	if cfg.Token == "" {
		path := filepath.Join(dataDir, tokenFile)
		line, err := readLine(path)
		if err != nil || line == "" {
			msg := fmt.Sprintf("no API token: pass --token, set LQ_TOKEN, or run on the lqd host as root (reads %s)", path)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				msg += ": " + err.Error()
			}
			return config{}, errors.New(msg)
		}
		cfg.Token = line
	}
	return cfg, nil
}

// readLine returns the first line of a file, trimmed.
func readLine(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line), nil
}

// normalizeURL accepts host:port for http://host:port and drops trailing slashes.
func normalizeURL(u string) string {
	u = strings.TrimSpace(u)
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	return strings.TrimRight(u, "/")
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

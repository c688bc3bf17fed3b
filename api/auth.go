package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/limiquantix/limiquantix/store"
)

// Auth checks bearer tokens against the hashes in the store. Plain tokens are never stored.
type Auth struct {
	db *store.DB
}

// NewAuth returns the token checker.
func NewAuth(db *store.DB) *Auth { return &Auth{db: db} }

type identityKey struct{}

// Identity returns the token that authenticated the request.
func Identity(ctx context.Context) (store.Token, bool) {
	t, ok := ctx.Value(identityKey{}).(store.Token)
	return t, ok
}

// HashToken is how tokens are stored: hex SHA-256 (tokens are 256 random bits, so a
// fast hash is enough).
func HashToken(plain string) string {
	h := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(h[:])
}

// Middleware refuses requests without a known bearer token.
func (a *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		plain, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || plain == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="limiquantix"`)
			writeError(w, r, errorf(http.StatusUnauthorized, CodeUnauthorized, "missing bearer token (Authorization: Bearer <token>)"))
			return
		}
		tok, err := a.db.TokenByHash(r.Context(), HashToken(strings.TrimSpace(plain)))
		if errors.Is(err, store.ErrNotFound) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="limiquantix", error="invalid_token"`)
			writeError(w, r, errorf(http.StatusUnauthorized, CodeUnauthorized, "invalid token"))
			return
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, tok)))
	})
}

// NewToken returns a fresh random token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("api: new token: %w", err)
	}
	return "lq_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// EnsureAdminToken makes sure an admin token exists and that its plain form is in path
// (mode 0600) for the local CLI. If the file is missing or stale, a new admin token
// replaces the old one. It reports whether it made a new token.
func EnsureAdminToken(ctx context.Context, db *store.DB, path string) (bool, error) {
	if b, err := os.ReadFile(path); err == nil {
		if _, err := db.TokenByHash(ctx, HashToken(strings.TrimSpace(string(b)))); err == nil {
			return false, nil
		}
	}
	plain, err := NewToken()
	if err != nil {
		return false, err
	}
	if err := db.DeleteTokenByName(ctx, "admin"); err != nil {
		return false, err
	}
	if err := db.CreateToken(ctx, store.Token{ID: uuid.NewString(), Name: "admin", Hash: HashToken(plain), Role: "admin"}); err != nil {
		return false, err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(plain+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("api: write admin token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("api: write admin token: %w", err)
	}
	return true, nil
}

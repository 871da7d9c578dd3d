package httpserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"herald/infra/config"
)

type keyContext struct{}

// KeyFrom returns the API key that authenticated the request, if any.
func KeyFrom(ctx context.Context) (config.APIKey, bool) {
	k, ok := ctx.Value(keyContext{}).(config.APIKey)
	return k, ok
}

// WithKey returns ctx carrying k, as Authenticate does (for tests of
// handlers mounted without it).
func WithKey(ctx context.Context, k config.APIKey) context.Context {
	return context.WithValue(ctx, keyContext{}, k)
}

// Authenticator checks `Authorization: Bearer SECRET` against API keys held
// only as SHA-256 hashes.
type Authenticator struct {
	keys []config.APIKey
	deny func(w http.ResponseWriter, r *http.Request, status int, detail string)
}

// NewAuthenticator returns an authenticator for keys. deny writes the
// refusal (401 or 403) in the API's own problem format.
func NewAuthenticator(keys []config.APIKey, deny func(w http.ResponseWriter, r *http.Request, status int, detail string)) *Authenticator {
	return &Authenticator{keys: keys, deny: deny}
}

// Lookup finds the key whose secret is secret. Every key is compared, in
// constant time, so the answer's timing does not tell which prefix matched.
func (a *Authenticator) Lookup(secret string) (config.APIKey, bool) {
	sum := sha256.Sum256([]byte(secret))
	var found config.APIKey
	ok := false
	for _, k := range a.keys {
		if subtle.ConstantTimeCompare(sum[:], k.Hash[:]) == 1 {
			found, ok = k, true
		}
	}
	return found, ok
}

// Require is middleware admitting only requests with a valid key carrying
// scope: a missing or unknown key gets 401, a key without the scope 403.
func (a *Authenticator) Require(scope config.Scope) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := r.Header.Get("Authorization")
			secret, found := strings.CutPrefix(h, "Bearer ")
			if !found || secret == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
				a.deny(w, r, http.StatusUnauthorized, "missing bearer API key")
				return
			}
			k, ok := a.Lookup(secret)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="herald", error="invalid_token"`)
				a.deny(w, r, http.StatusUnauthorized, "unknown API key")
				return
			}
			if !k.Has(scope) {
				a.deny(w, r, http.StatusForbidden, "API key "+k.Name+" lacks the "+string(scope)+" scope")
				return
			}
			next.ServeHTTP(w, r.WithContext(WithKey(r.Context(), k)))
		})
	}
}

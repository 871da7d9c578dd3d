package webpushtest

import (
	"crypto/ecdh"
	"encoding/base64"
	"testing"
)

// TestDecryptRFC8291Example decrypts the worked example of RFC 8291 §5
// (values from its Appendix A), so that the decryption the adapter's tests
// rely on is checked against the RFC rather than against the adapter. It is
// an internal test because it needs the example's fixed user agent key,
// which NewBrowser does not take.
func TestDecryptRFC8291Example(t *testing.T) {
	t.Parallel()
	dec := func(s string) []byte {
		t.Helper()
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key, err := ecdh.P256().NewPrivateKey(dec("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"))
	if err != nil {
		t.Fatal(err)
	}
	const uaPublic = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	b := &Browser{key: key, auth: dec("BTBZMqHH6r4Tts7J_aSIgg")}
	if got := b.Subscription("https://push.example.net/p/1").P256dh; got != uaPublic {
		t.Fatalf("ua_public = %s, want the example's %s", got, uaPublic)
	}
	body := dec("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")

	plain, err := b.Decrypt(body)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if want := "When I grow up, I want to be a watermelon"; string(plain) != want {
		t.Fatalf("plaintext %q, want %q", plain, want)
	}

	// A flipped ciphertext bit, or another browser's keys, must not open.
	body[len(body)-1] ^= 1
	if _, err := b.Decrypt(body); err == nil {
		t.Fatal("Decrypt opened a tampered record")
	}
	body[len(body)-1] ^= 1
	if _, err := NewBrowser().Decrypt(body); err == nil {
		t.Fatal("another browser decrypted the example")
	}
}

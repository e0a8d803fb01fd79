package vonage_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

// TestSecretsNeverPrinted prints configs, providers and the webhook handler
// with every common verb and looks for the secrets.
func TestSecretsNeverPrinted(t *testing.T) {
	_, pemKey := testRSA(t)
	v2cfg := vonage.V2Config{APIKey: testKey, APISecret: testSecret, ApplicationID: testAppID, PrivateKey: pemKey, Brand: "Acme"}
	v2, err := vonage.NewV2(v2cfg)
	if err != nil {
		t.Fatal(err)
	}
	lcfg := vonage.LegacyConfig{APIKey: testKey, APISecret: testSecret, Brand: "Acme"}
	legacy, err := vonage.NewLegacy(lcfg)
	if err != nil {
		t.Fatal(err)
	}
	wcfg := vonage.WebhookConfig{SignatureSecret: sigSecret, OnEvent: func(otp.Event) {}}
	wh, err := vonage.NewWebhookHandler(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	keyLine := strings.Split(string(pemKey), "\n")[1]
	for _, v := range []any{v2cfg, &v2cfg, v2, lcfg, &lcfg, legacy, wcfg, wh} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			out := fmt.Sprintf(verb, v)
			for _, secret := range []string{testSecret, sigSecret, keyLine[:20]} {
				if strings.Contains(out, secret) {
					t.Fatalf("%s of %T shows a secret: %s", verb, v, out)
				}
			}
		}
	}
	if out := fmt.Sprint(v2cfg); !strings.Contains(out, testKey) || !strings.Contains(out, "[redacted]") {
		t.Fatalf("config print lost its useful part: %s", out)
	}
}

// TestSecretsNotInErrors: credential failures and transport errors do not
// quote the secret or the number.
func TestSecretsNotInErrors(t *testing.T) {
	f := newFixture(t, vonagetest.Config{APIKey: testKey, APISecret: "the-right-one"})
	p := f.v2(t, nil)
	_, err := p.Send(context.Background(), sms(testPhone))
	mustIs(t, err, otp.ErrProviderAccount)
	l := f.legacy(t, nil)
	_, lerr := l.Send(context.Background(), sms(testPhone))
	mustIs(t, lerr, otp.ErrProviderAccount)
	f.srv.FailNext(vonagetest.LegacyRequest, vonagetest.Fault{Drop: true})
	_, derr := l.Send(context.Background(), sms(testPhone))
	for _, e := range []error{err, lerr, derr} {
		msg := fmt.Sprintf("%v %+v", e, e)
		if strings.Contains(msg, testSecret) || strings.Contains(msg, "447700900001") {
			t.Fatalf("error leaks: %s", msg)
		}
	}
}

package vonage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/vonage"
	"github.com/otpkit/otp/vonage/vonagetest"
)

var ctx = context.Background()

// TestV2IndiaDLTAndAppHash: entity_id, content_id and app_hash go on SMS
// steps only; PerSend sets them for Indian numbers only.
func TestV2IndiaDLTAndAppHash(t *testing.T) {
	f := newFixture(t, vonagetest.Config{})
	p := f.v2(t, func(c *vonage.V2Config) {
		c.AppHash = "FA+9qCX9VSu"
		c.Fallback = []otp.Channel{otp.Voice}
		c.PerSend = func(req otp.SendRequest, o *vonage.SendOptions) {
			if req.Region == "IN" || strings.HasPrefix(req.To, "+91") {
				o.EntityID, o.ContentID = "1101440230000012345", "1107160000000054321"
			}
		}
	})
	if _, err := p.Send(ctx, sms("+919876543210")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, sms(testPhone)); err != nil {
		t.Fatal(err)
	}
	sends := f.srv.Sends()
	in, uk := sends[0], sends[1]
	if in.EntityID != "1101440230000012345" || in.ContentID != "1107160000000054321" || in.AppHash != "FA+9qCX9VSu" {
		t.Fatalf("India: %+v", in)
	}
	if uk.EntityID != "" || uk.ContentID != "" || uk.AppHash != "FA+9qCX9VSu" {
		t.Fatalf("UK: %+v", uk)
	}
	// The voice step carries none of them (the fake refuses them there).
	if _, err := p.Send(ctx, otp.SendRequest{To: "+447700900002", Channel: otp.Voice, CodeLength: 6}); err != nil {
		t.Fatal(err)
	}
}

// TestV2CustomCode: a per-send code is what Vonage sends and checks; one
// of the wrong length, or from an account without custom codes, is
// refused.
func TestV2CustomCode(t *testing.T) {
	f := newFixture(t, vonagetest.Config{})
	code := "864213"
	p := f.v2(t, func(c *vonage.V2Config) {
		c.PerSend = func(req otp.SendRequest, o *vonage.SendOptions) { o.Code = code }
	})
	ref, err := p.Send(ctx, sms(testPhone))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.srv.LastCode(testPhone); got != "864213" {
		t.Fatal(got)
	}
	if err := p.Check(ctx, ref, "864213"); err != nil {
		t.Fatal(err)
	}
	code = "1234"
	_, err = p.Send(ctx, sms("+447700900002"))
	if pe := providerError(t, err); !pe.NotSent || f.srv.Calls(vonagetest.V2Start) != 1 {
		t.Fatalf("wrong length: %v", err)
	}
	code = "12"
	_, err = p.Send(ctx, sms("+447700900002"))
	if err == nil || !strings.Contains(err.Error(), "PerSend") {
		t.Fatalf("invalid PerSend result: %v", err)
	}
	f2 := newFixture(t, vonagetest.Config{RefuseCustomCodes: true})
	p2 := f2.v2(t, func(c *vonage.V2Config) {
		c.PerSend = func(req otp.SendRequest, o *vonage.SendOptions) { o.Code = "864213" }
	})
	_, err = p2.Send(ctx, sms(testPhone))
	mustIs(t, err, otp.ErrProviderRejected)
}

func TestV2OptionsValidated(t *testing.T) {
	for name, mutate := range map[string]func(*vonage.V2Config){
		"entity id too long": func(c *vonage.V2Config) { c.EntityID = strings.Repeat("1", 21) },
		"content id space":   func(c *vonage.V2Config) { c.ContentID = "a b" },
		"app hash short":     func(c *vonage.V2Config) { c.AppHash = "abc" },
	} {
		cfg := vonage.V2Config{APIKey: testKey, APISecret: testSecret, Brand: "Acme"}
		mutate(&cfg)
		if _, err := vonage.NewV2(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

package main

import (
	"context"
	"strings"
	"testing"

	"github.com/otpkit/otp/infobip/infobiptest"
)

func TestRun(t *testing.T) {
	srv := infobiptest.NewServer(infobiptest.Config{APIKey: "k"})
	defer srv.Close()
	vars := map[string]string{"INFOBIP_BASE_URL": srv.URL, "INFOBIP_API_KEY": "k", "INFOBIP_VOICE": "1", "INFOBIP_EMAIL_TEMPLATE_ID": "42"}
	var first, second strings.Builder
	if err := run(context.Background(), func(k string) string { return vars[k] }, &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"INFOBIP_APPLICATION_ID=", "INFOBIP_SMS_MESSAGE_ID=", "INFOBIP_VOICE_MESSAGE_ID=", "INFOBIP_EMAIL_MESSAGE_ID="} {
		if !strings.Contains(first.String(), k) {
			t.Errorf("output lacks %s:\n%s", k, first.String())
		}
	}
	if err := run(context.Background(), func(k string) string { return vars[k] }, &second); err != nil || second.String() != first.String() {
		t.Fatalf("second run: %v\n%s\nwant\n%s", err, second.String(), first.String())
	}
	for _, bad := range []map[string]string{
		{"INFOBIP_BASE_URL": srv.URL},
		{"INFOBIP_BASE_URL": srv.URL, "INFOBIP_API_KEY": "k", "INFOBIP_PIN_LENGTH": "x"},
		{"INFOBIP_BASE_URL": srv.URL, "INFOBIP_API_KEY": "k", "INFOBIP_PIN_TTL": "forever"},
		{"INFOBIP_BASE_URL": srv.URL, "INFOBIP_API_KEY": "wrong"},
	} {
		if err := run(context.Background(), func(k string) string { return bad[k] }, &strings.Builder{}); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// Command infobip-setup creates (or finds) the Infobip 2FA application and
// message templates that package infobip needs, and prints their IDs as
// environment variables for the Config.
//
//	INFOBIP_BASE_URL=https://xxxxx.api.infobip.com INFOBIP_API_KEY=... go run ./examples/infobip-setup
//
// It is idempotent: run it again and it prints the same IDs, correcting
// settings that drifted. Variables (defaults in brackets):
//
//	INFOBIP_BASE_URL, INFOBIP_API_KEY  required
//	INFOBIP_APP_NAME                   application name [otp]
//	INFOBIP_PIN_LENGTH                 digits per PIN, = otp.Config.CodeLength [6]
//	INFOBIP_PIN_ATTEMPTS               wrong PINs allowed [5]
//	INFOBIP_PIN_TTL                    PIN lifetime, Infobip format [10m]
//	INFOBIP_SEND_LIMIT                 sends per number [5/1d]
//	INFOBIP_SENDER                     SMS sender name [Infobip's default]
//	INFOBIP_TEXT                       SMS and voice text [Your verification code is {{pin}}]
//	INFOBIP_LANGUAGE                   voice language [en]
//	INFOBIP_VOICE                      "1" to set up voice too [off]
//	INFOBIP_EMAIL_TEMPLATE_ID          an email template to set up email too [off]
//	INFOBIP_EMAIL_FROM                 the email sender address
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/otpkit/otp/infobip"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "infobip-setup:", err)
		os.Exit(1)
	}
}

// run does the work with its inputs passed in, for the test.
func run(ctx context.Context, getenv func(string) string, out io.Writer) error {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	c, err := infobip.New(infobip.Config{BaseURL: getenv("INFOBIP_BASE_URL"), APIKey: getenv("INFOBIP_API_KEY")})
	if err != nil {
		return err
	}
	pinLength, err := strconv.Atoi(env("INFOBIP_PIN_LENGTH", "6"))
	if err != nil || pinLength < 4 || pinLength > 10 {
		return fmt.Errorf("INFOBIP_PIN_LENGTH %q: want 4 to 10", getenv("INFOBIP_PIN_LENGTH"))
	}
	attempts, err := strconv.Atoi(env("INFOBIP_PIN_ATTEMPTS", "5"))
	if err != nil || attempts < 1 {
		return fmt.Errorf("INFOBIP_PIN_ATTEMPTS %q: want a positive number", getenv("INFOBIP_PIN_ATTEMPTS"))
	}
	text := &infobip.Message{
		Text: env("INFOBIP_TEXT", "Your verification code is {{pin}}"), PinLength: pinLength,
		SenderID: getenv("INFOBIP_SENDER"), Language: env("INFOBIP_LANGUAGE", "en"),
	}
	s := infobip.Setup{
		Application: infobip.Application{Name: env("INFOBIP_APP_NAME", "otp"), Config: infobip.AppConfig{
			PinAttempts: attempts, PinTimeToLive: env("INFOBIP_PIN_TTL", "10m"),
			SendPinPerPhoneNumberLimit: env("INFOBIP_SEND_LIMIT", "5/1d"),
		}},
		SMS: text,
	}
	if getenv("INFOBIP_VOICE") == "1" {
		s.Voice = text
	}
	if v := getenv("INFOBIP_EMAIL_TEMPLATE_ID"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("INFOBIP_EMAIL_TEMPLATE_ID %q: want a positive number", v)
		}
		s.Email = &infobip.Message{EmailTemplateID: id, From: getenv("INFOBIP_EMAIL_FROM"), PinLength: pinLength}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ids, err := c.EnsureSetup(ctx, s)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "INFOBIP_APPLICATION_ID=%s\nINFOBIP_SMS_MESSAGE_ID=%s\n", ids.ApplicationID, ids.SMSMessageID)
	if ids.VoiceMessageID != "" {
		fmt.Fprintf(out, "INFOBIP_VOICE_MESSAGE_ID=%s\n", ids.VoiceMessageID)
	}
	if ids.EmailMessageID != "" {
		fmt.Fprintf(out, "INFOBIP_EMAIL_MESSAGE_ID=%s\n", ids.EmailMessageID)
	}
	return nil
}

package otphttp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/otphttp"
)

func messageFor(t *testing.T, c *otphttp.Catalog, acceptLanguage string, err error) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/check", nil)
	if acceptLanguage != "" {
		r.Header.Set("Accept-Language", acceptLanguage)
	}
	otphttp.WriteError(rec, r, c, err)
	var body otphttp.ErrorBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	return body.Message
}

func TestLanguages(t *testing.T) {
	wrong := &otp.WrongCodeError{AttemptsLeft: 3}
	cases := []struct{ accept, want string }{
		{"", "That code is not right. 3 attempts left."},
		{"de-DE,de;q=0.9,en;q=0.8", "Der Code ist nicht richtig. Noch 3 Versuche."},
		{"fr-CA", "Ce code n’est pas le bon. Il vous reste 3 essais."},
		{"es-419,es;q=0.9", "El código no es correcto. Te quedan 3 intentos."},
		{"en-GB,en;q=0.9", "That code is not right. 3 attempts left."},
		{"ja, fr;q=0.5", "Ce code n’est pas le bon. Il vous reste 3 essais."},
		{"ja", "That code is not right. 3 attempts left."},
		{"*", "That code is not right. 3 attempts left."},
		{"not a language tag!!", "That code is not right. 3 attempts left."},
		{"de;q=0.1, es;q=0.9", "El código no es correcto. Te quedan 3 intentos."},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, messageFor(t, nil, c.accept, wrong), c.accept)
	}

	limited := &otp.RateLimitError{Scope: otp.ScopeNumber, RetryAfter: 25 * time.Second}
	assert.Equal(t, "Zu viele Anfragen. Versuchen Sie es in 25 Sekunden erneut.", messageFor(t, nil, "de", limited))
	assert.Equal(t, "Trop de demandes. Réessayez dans 25 secondes.", messageFor(t, nil, "fr", limited))
	assert.Equal(t, "Demasiadas solicitudes. Vuelve a intentarlo dentro de 25 segundos.", messageFor(t, nil, "es", limited))
	soon := &otp.RateLimitError{Scope: otp.ScopeCooldown, RetryAfter: 5 * time.Minute}
	assert.Equal(t, "Gerade wurde ein Code gesendet. Einen weiteren können Sie in 5 Minuten anfordern.", messageFor(t, nil, "de", soon))
	assert.Equal(t, "Le service de vérification ne répond pas. Réessayez dans une minute.",
		messageFor(t, nil, "fr", otp.ErrStoreUnavailable))
	assert.Equal(t, "Confirma que no eres un robot y vuelve a pedir el código.",
		messageFor(t, nil, "es", &otp.ChallengeError{Scope: otp.ScopeOverride}))
	assert.Equal(t, "Das scheint ein Festnetzanschluss zu sein. Geben Sie eine Mobilnummer ein: Der Code kommt per SMS.",
		messageFor(t, nil, "de", &otp.NumberTypeError{Type: otp.NumberFixedLine, Channel: otp.SMS}))
}

func TestCatalogOverridesAndAdditions(t *testing.T) {
	c := otphttp.NewCatalog()
	c.Set(language.English, otphttp.MsgExpired, "Your code timed out.")
	c.Set(language.Italian, otphttp.MsgExpired, "Il codice è scaduto.")
	assert.Equal(t, "Your code timed out.", messageFor(t, c, "en", otp.ErrExpired))
	assert.Equal(t, "Il codice è scaduto.", messageFor(t, c, "it-IT", otp.ErrExpired))
	assert.Equal(t, "There is no code waiting to be checked. Enter your number to get one.",
		messageFor(t, c, "it", otp.ErrNotFound), "a message missing in a language falls back to English")
	assert.Len(t, c.Languages(), 5)

	// The default catalogue is untouched.
	assert.Equal(t, "That code has expired. Send a new one.", messageFor(t, nil, "en", otp.ErrExpired))
	assert.Equal(t, language.English, otphttp.DefaultCatalog().Match(nil))
	assert.Equal(t, "Code gesendet. Es kann eine Minute dauern, bis er ankommt.",
		otphttp.DefaultCatalog().Notice(request("1.1.1.1:1", "Accept-Language", "de"), otphttp.MsgCodeSent))
}

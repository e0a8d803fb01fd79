package vendorhttp

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBaseURL(t *testing.T) {
	for raw, want := range map[string]string{
		"":                            "https://default.example",
		"https://api.example.com/":    "https://api.example.com",
		" https://api.example.com/v ": "https://api.example.com/v",
		"http://127.0.0.1:8080":       "http://127.0.0.1:8080",
		"http://[::1]:8080/":          "http://[::1]:8080",
		"http://localhost:9":          "http://localhost:9",
	} {
		got, err := BaseURL("x", raw, "https://default.example")
		assert.NoError(t, err, raw)
		assert.Equal(t, want, got, raw)
	}
	for _, raw := range []string{
		"http://api.example.com", // a secret in the clear
		"http://10.0.0.1",
		"ftp://api.example.com",
		"https://",
		"https://user:pass@api.example.com",
		"https://api.example.com/?a=1",
		"https://api.example.com/#f",
		"https://api.example.com/?", // the vendor's path would go in the query
		"https://api.example.com#",
		"api.example.com",
		"://x",
	} {
		_, err := BaseURL("x", raw, "https://default.example")
		if assert.Error(t, err, raw) {
			assert.Contains(t, err.Error(), "x: BaseURL", raw)
			assert.NotContains(t, err.Error(), "pass", raw)
		}
	}
}

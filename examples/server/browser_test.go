package main

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
)

// chromiumPath returns the browser to drive: $OTP_CHROMIUM, else Debian's
// /usr/bin/chromium. Without one the test skips, unless CI is set.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("OTP_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but there is no Chromium at %s (set OTP_CHROMIUM): %v", path, err)
		}
		t.Skipf("no Chromium at %s (apt-get install chromium, or set OTP_CHROMIUM)", path)
	}
	return path
}

// artifactsDir is where screenshots go: $OTP_ARTIFACTS_DIR, else a new
// temporary directory that is kept for a person to look at.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("OTP_ARTIFACTS_DIR")
	if dir == "" {
		var err error
		dir, err = os.MkdirTemp("", "otp-e2e-")
		require.NoError(t, err)
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Logf("screenshots in %s", dir)
	return dir
}

// browser drives one browser context (its own cookies) in a headless
// Chromium.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, steps...))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err)
	return s
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	require.NoError(b.t, err)
	return s
}

// submit clicks a button that posts a form and waits for the page the
// server answers with, returning its HTTP status.
func (b *browser) submit(sel string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	require.NoError(b.t, err)
	return res.Status
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(b.t, err)
	require.NoError(b.t, os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644))
}

func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// TestBrowser walks the page in headless Chromium, with JavaScript (the
// page then uses the JSON API) and without (plain form posts).
func TestBrowser(t *testing.T) {
	path := chromiumPath(t)
	dir := artifactsDir(t)

	cfg, err := readConfig(envOf(nil))
	require.NoError(t, err)
	a, err := newApp(cfg, envOf(nil), quiet)
	require.NoError(t, err)
	defer a.Close()
	ts := httptest.NewServer(a.handler)
	defer ts.Close()

	bounded, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(bounded,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(720, 640),
	)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// Start the browser on a context with no deadline of its own.
	require.NoError(t, chromedp.Do(browserCtx))

	t.Run("with JavaScript", func(t *testing.T) {
		const phone = "+447911123456"
		b := &browser{t: t, ctx: browserCtx, dir: dir}
		b.do(chromedp.Navigate(ts.URL), chromedp.WaitVisible(chromedp.CSS("#phone")))
		assert.Equal(t, "on", b.eval(`document.documentElement.dataset.js || ""`), "app.js ran")
		b.screenshot("01-js-enter-number")

		b.typeInto("#phone", "+44 7911 123456")
		b.do(chromedp.Click(chromedp.CSS("#step-phone button")), chromedp.WaitVisible(chromedp.CSS("#step-code")))
		assert.Equal(t, "Code sent. It can take a minute to arrive.", b.text("#notice"))
		assert.Equal(t, phone, b.text("#sent-to"))
		assert.Equal(t, "5", b.text("#attempts-left"))
		b.screenshot("02-js-code-sent")

		code, ok := a.dev.LastCode(phone)
		require.True(t, ok)
		bad := "000000"
		if code == bad {
			bad = "111111"
		}
		b.typeInto("#code", bad)
		b.do(chromedp.Click(chromedp.CSS("#step-code form[action='/check'] button")), chromedp.WaitVisible(chromedp.CSS("#error")))
		assert.Equal(t, "That code is not right. 4 attempts left.", b.text("#error"))
		assert.Equal(t, "4", b.text("#attempts-left"))
		b.screenshot("03-js-wrong-code")

		b.typeInto("#code", code)
		b.do(chromedp.Click(chromedp.CSS("#step-code form[action='/check'] button")), chromedp.WaitVisible(chromedp.CSS("#step-done")))
		assert.Equal(t, phone, b.text("#verified-to"))
		b.screenshot("04-js-verified")
		assert.Equal(t, "http://"+ts.Listener.Addr().String()+"/", b.eval(`location.href`), "no page load: the API did it")
	})

	t.Run("without JavaScript", func(t *testing.T) {
		const phone = "+447911123457"
		tab, cancelTab := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
		defer cancelTab()
		require.NoError(t, chromedp.Do(tab), "open the tab on a context with no deadline")
		b := &browser{t: t, ctx: tab, dir: dir}
		b.do(chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
		b.do(chromedp.Navigate(ts.URL), chromedp.WaitVisible(chromedp.CSS("#phone")))
		assert.Equal(t, "", b.text("#error"))
		b.screenshot("05-nojs-enter-number")

		b.typeInto("#phone", phone)
		assert.EqualValues(t, 200, b.submit("#step-phone button"), "303 to the page")
		b.do(chromedp.WaitVisible(chromedp.CSS("#step-code")))
		assert.Equal(t, "Code sent. It can take a minute to arrive.", b.text("#notice"))
		assert.Equal(t, phone, b.text("#sent-to"))
		b.screenshot("06-nojs-code-sent")

		code, ok := a.dev.LastCode(phone)
		require.True(t, ok)
		bad := "000000"
		if code == bad {
			bad = "111111"
		}
		b.typeInto("#code", bad)
		assert.EqualValues(t, 422, b.submit("#step-code form[action='/check'] button"))
		assert.Equal(t, "That code is not right. 4 attempts left.", b.text("#error"))
		b.screenshot("07-nojs-wrong-code")

		assert.EqualValues(t, 429, b.submit("#step-code form[action='/resend'] button"))
		assert.Contains(t, b.text("#error"), "You can ask for another in")
		b.screenshot("08-nojs-resend-too-soon")

		b.typeInto("#code", code)
		assert.EqualValues(t, 200, b.submit("#step-code form[action='/check'] button"))
		b.do(chromedp.WaitVisible(chromedp.CSS("#step-done")))
		assert.Equal(t, phone, b.text("#verified-to"))
		b.screenshot("09-nojs-verified")

		assert.EqualValues(t, 200, b.submit("#step-done button"))
		b.do(chromedp.WaitVisible(chromedp.CSS("#step-phone")))
		assert.Equal(t, "", b.eval(`document.getElementById("phone").value`))
		b.screenshot("10-nojs-another-number")
	})

	assert.Equal(t, 2, a.dev.Calls(otp.OpStart))
	assert.Equal(t, 4, a.dev.Calls(otp.OpCheck))
}

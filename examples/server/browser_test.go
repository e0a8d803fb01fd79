package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otpkit/otp"
	"github.com/otpkit/otp/internal/testenv"
	"github.com/otpkit/otp/otptest"
)

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

// a11y is JavaScript run in the page for the accessibility checks:
// contrast ratios (WCAG 2.x relative luminance) and what has focus.
const a11y = `
window.__lum = (c) => {
  const [r, g, b] = c.match(/[\d.]+/g).slice(0, 3).map(Number).map((v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
window.__ratio = (a, b) => {
  const x = __lum(a), y = __lum(b);
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
};
window.__card = () => getComputedStyle(document.querySelector("main.card")).backgroundColor;
`

// contrast returns the contrast of the input sel's border against the
// card, and of its focus ring once focused.
func (b *browser) contrast(sel string) (border, ring float64) {
	b.t.Helper()
	b.eval(a11y + `""`)
	border, err := strconv.ParseFloat(b.eval(`(() => { const el = document.querySelector("`+sel+`"); el.blur();
		return String(__ratio(getComputedStyle(el).borderTopColor, __card())); })()`), 64)
	require.NoError(b.t, err)
	ring, err = strconv.ParseFloat(b.eval(`(() => { const el = document.querySelector("`+sel+`"); el.focus();
		return String(__ratio(getComputedStyle(el).outlineColor, __card())); })()`), 64)
	require.NoError(b.t, err)
	return border, ring
}

// focused returns the id of the element that has focus.
func (b *browser) focused() string {
	b.t.Helper()
	return b.eval(`document.activeElement ? document.activeElement.id : ""`)
}

func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	return b.eval(`document.querySelector("` + sel + `").getAttribute("` + name + `") || ""`)
}

// liveRegions checks that the notice and error regions are there and
// live, whatever they hold.
func (b *browser) liveRegions() {
	b.t.Helper()
	assert.Equal(b.t, "status polite", b.attr("#notice", "role")+" "+b.attr("#notice", "aria-live"))
	assert.Equal(b.t, "alert assertive", b.attr("#error", "role")+" "+b.attr("#error", "aria-live"))
}

// newTab opens a tab with cookies of its own, width px wide, with or
// without JavaScript.
func newTab(t *testing.T, browserCtx context.Context, dir string, width int64, js bool) *browser {
	t.Helper()
	tab, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(tab), "open the tab on a context with no deadline")
	b := &browser{t: t, ctx: tab, dir: dir}
	b.do(chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tgt, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: width, Height: 760, DeviceScaleFactor: 1, Mobile: width < 600}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tgt, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !js})
		return err
	}))
	return b
}

// TestBrowser walks the page in headless Chromium, with JavaScript (the
// page then uses the JSON API) at 720 and 400 px, and without (plain form
// posts), checking focus, live regions, invalid fields and contrast; and
// the step-up challenge.
func TestBrowser(t *testing.T) {
	path := testenv.Chromium(t)
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
		chromedp.Flag("lang", "en-GB"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(720, 760),
	)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// Start the browser on a context with no deadline of its own.
	require.NoError(t, chromedp.Do(browserCtx))

	withJS := func(t *testing.T, width int64, phone, shot string) {
		b := newTab(t, browserCtx, dir, width, true)
		b.do(chromedp.Navigate(ts.URL), chromedp.WaitVisible(chromedp.CSS("#phone")))
		assert.Equal(t, "on", b.eval(`document.documentElement.dataset.js || ""`), "app.js ran")
		assert.Equal(t, "phone", b.focused(), "the first field has focus")
		b.liveRegions()
		border, ring := b.contrast("#phone")
		assert.GreaterOrEqual(t, border, 3.0, "input border contrast")
		assert.GreaterOrEqual(t, ring, 3.0, "focus ring contrast")
		assert.Equal(t, "true", b.eval(`String(document.documentElement.scrollWidth <= window.innerWidth)`), "no sideways scrolling")
		b.screenshot(shot + "-1-enter-number")

		b.typeInto("#phone", "+44 20 7946 0000")
		b.do(chromedp.Click(chromedp.CSS("#step-phone button")), chromedp.WaitVisible(chromedp.CSS("#error:not(:empty)")))
		assert.Contains(t, b.text("#error"), "looks like a landline")
		assert.Equal(t, "phone", b.focused(), "focus back on the field in error")
		assert.Equal(t, "true", b.attr("#phone", "aria-invalid"))
		assert.Equal(t, "error phone-hint", b.attr("#phone", "aria-describedby"))
		b.screenshot(shot + "-2-landline")

		b.typeInto("#phone", phone)
		b.do(chromedp.Click(chromedp.CSS("#step-phone button")), chromedp.WaitVisible(chromedp.CSS("#step-code")))
		assert.Equal(t, "Code sent. It can take a minute to arrive.", b.text("#notice"), "in the status region")
		assert.Equal(t, "", b.text("#error"))
		b.liveRegions()
		assert.Equal(t, "+44 7400 "+phone[7:], b.text("#sent-to"), "the number, formatted")
		assert.Equal(t, "5", b.text("#attempts-left"))
		assert.Equal(t, "code", b.focused(), "focus moves to the code field")
		assert.Empty(t, b.attr("#phone", "aria-invalid"), "the phone field is valid again")
		b.screenshot(shot + "-3-code-sent")

		code, ok := a.dev.LastCode(phone)
		require.True(t, ok)
		b.typeInto("#code", wrongCode(code))
		b.do(chromedp.Click(chromedp.CSS("#step-code form[action='/check'] button")), chromedp.WaitVisible(chromedp.CSS("#error:not(:empty)")))
		assert.Equal(t, "That code is not right. 4 attempts left.", b.text("#error"), "in the alert region")
		b.liveRegions()
		assert.Equal(t, "4", b.text("#attempts-left"))
		assert.Equal(t, "code", b.focused())
		assert.Equal(t, "true", b.attr("#code", "aria-invalid"))
		assert.Equal(t, "error code-hint", b.attr("#code", "aria-describedby"))
		b.screenshot(shot + "-4-wrong-code")

		b.typeInto("#code", code)
		b.do(chromedp.Click(chromedp.CSS("#step-code form[action='/check'] button")), chromedp.WaitVisible(chromedp.CSS("#step-done")))
		assert.Equal(t, "+44 7400 "+phone[7:], b.text("#verified-to"))
		assert.Equal(t, "h-done", b.focused(), "focus moves to the new heading")
		assert.Equal(t, "", b.text("#error"))
		b.screenshot(shot + "-5-verified")
		assert.Equal(t, ts.URL+"/", b.eval(`location.href`), "no page load: the API did it")
	}
	t.Run("with JavaScript", func(t *testing.T) { withJS(t, 720, "+447400123456", "js") })
	t.Run("with JavaScript at 400 px", func(t *testing.T) { withJS(t, 400, "+447400123458", "js400") })

	t.Run("without JavaScript", func(t *testing.T) {
		const phone = "+447400123457"
		b := newTab(t, browserCtx, dir, 720, false)
		b.do(chromedp.Navigate(ts.URL), chromedp.WaitVisible(chromedp.CSS("#phone")))
		assert.Equal(t, "", b.text("#error"))
		assert.Equal(t, "phone", b.focused(), "autofocus")
		b.liveRegions()
		b.screenshot("nojs-1-enter-number")

		b.typeInto("#phone", phone)
		assert.EqualValues(t, 200, b.submit("#step-phone button"), "303 to the page")
		b.do(chromedp.WaitVisible(chromedp.CSS("#step-code")))
		assert.Equal(t, "Code sent. It can take a minute to arrive.", b.text("#notice"))
		assert.Equal(t, "+44 7400 123457", b.text("#sent-to"))
		assert.Equal(t, "code", b.focused())
		b.screenshot("nojs-2-code-sent")

		code, ok := a.dev.LastCode(phone)
		require.True(t, ok)
		b.typeInto("#code", wrongCode(code))
		assert.EqualValues(t, 200, b.submit("#step-code form[action='/check'] button"), "a failed post redirects too")
		assert.Equal(t, "That code is not right. 4 attempts left.", b.text("#error"))
		assert.Equal(t, "code", b.focused())
		assert.Equal(t, "true", b.attr("#code", "aria-invalid"))
		assert.Equal(t, "error code-hint", b.attr("#code", "aria-describedby"))
		b.screenshot("nojs-3-wrong-code")
		checks := a.dev.Calls(otp.OpCheck)
		b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#step-code")))
		assert.Equal(t, checks, a.dev.Calls(otp.OpCheck), "a reload posts nothing again")
		assert.Equal(t, "", b.text("#error"), "and shows the error once")

		assert.EqualValues(t, 200, b.submit("#step-code form[action='/resend'] button"))
		assert.Contains(t, b.text("#error"), "You can ask for another in")
		b.screenshot("nojs-4-resend-too-soon")

		b.typeInto("#code", code)
		assert.EqualValues(t, 200, b.submit("#step-code form[action='/check'] button"))
		b.do(chromedp.WaitVisible(chromedp.CSS("#step-done")))
		assert.Equal(t, "+44 7400 123457", b.text("#verified-to"))
		assert.Equal(t, "h-done", b.focused())
		b.screenshot("nojs-5-verified")

		assert.EqualValues(t, 200, b.submit("#step-done button"))
		b.do(chromedp.WaitVisible(chromedp.CSS("#step-phone")))
		assert.Equal(t, "", b.eval(`document.getElementById("phone").value`))
		b.screenshot("nojs-6-another-number")
	})

	t.Run("challenge", func(t *testing.T) {
		require.NoError(t, a.verifier.SetOverride(context.Background(), otp.Override{Target: otp.RangeTarget("+44740099xxxx"), Action: otp.OverrideChallenge}))
		const phone = "+447400999123"
		b := newTab(t, browserCtx, dir, 400, true)
		b.do(chromedp.Navigate(ts.URL), chromedp.WaitVisible(chromedp.CSS("#phone")))
		b.typeInto("#phone", phone)
		b.do(chromedp.Click(chromedp.CSS("#step-phone button")), chromedp.WaitVisible(chromedp.CSS("#challenge")))
		assert.Equal(t, "Please confirm you are not a robot, then send the code again.", b.text("#error"))
		assert.Equal(t, "challenge-box", b.focused(), "focus on the challenge")
		b.screenshot("challenge-1-asked")
		b.do(chromedp.Click(chromedp.CSS("#step-phone button")), chromedp.WaitVisible(chromedp.CSS("#error:not(:empty)")))
		assert.Equal(t, 0, sentTo(a.dev, phone), "the box not ticked: nothing sent")
		b.do(chromedp.Click(chromedp.CSS("#challenge-box")))
		b.do(chromedp.Poll[chromedp.Void](`document.getElementById("challenge-box").value !== ""`, chromedp.WithPollingTimeout(5*time.Second)))
		b.do(chromedp.Click(chromedp.CSS("#step-phone button")), chromedp.WaitVisible(chromedp.CSS("#step-code")))
		assert.Equal(t, 1, sentTo(a.dev, phone), "the challenge passed: sent")
		assert.Equal(t, "true", b.eval(`String(document.getElementById("challenge").hidden)`))
		b.screenshot("challenge-2-passed")
	})
}

func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// sentTo counts the sends to to.
func sentTo(p *otptest.Provider, to string) int {
	n := 0
	for _, s := range p.Sends() {
		if s.To == to {
			n++
		}
	}
	return n
}

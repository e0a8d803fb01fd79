package otp

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/nyaruka/phonenumbers"
)

// Route sends the numbers of some regions or calling codes through one
// provider. See [NewRouter].
type Route struct {
	// Regions are ISO 3166 regions ("US", "IN") whose numbers take this
	// route.
	Regions []string
	// CallingCodes are country calling codes, digits without the "+"
	// ("1", "44", "882"), whose numbers take this route unless a route
	// names their region.
	CallingCodes []string
	// Provider sends them: any Provider, or a *[Failover] of several.
	Provider Provider
}

// Router is a Provider that sends each verification through the provider
// of its destination's route: by the number's region first, then by its
// calling code, else the default. Each route's provider may be a
// [Failover]. Checks, resends and cancels go to the provider that sent
// (Ref.Provider, the name of a Failover's inner provider too), and the
// Verifier's events name it (but EventStarted, which comes before a route
// is picked). Build one with [NewRouter]. A Router is safe for concurrent
// use.
type Router struct {
	def     Provider
	regions map[string]Provider // ISO region -> route provider
	codes   map[string]Provider // calling code -> route provider
	routes  []Provider          // every route provider, the default first
	leaves  map[string]*leaf    // by name: the providers that send
}

// leaf is a provider that sends, and the Failovers whose breakers hear of
// its answers.
type leaf struct {
	p       Provider
	holders []holder
}

type holder struct {
	f *Failover
	i int // the leaf's index in f
}

var (
	_ Resender             = (*Router)(nil)
	_ Canceler             = (*Router)(nil)
	_ DestinationSupporter = (*Router)(nil)
)

// NewRouter returns a Router that sends through def where no route
// applies. A number takes the route naming its region, else the route
// naming its calling code, else def; an email address, having neither,
// takes def. So with routes {Regions: US, CA} and {CallingCodes: 1},
// numbers of the US and Canada take the first, other +1 numbers (Puerto
// Rico, Jamaica, ...) the second.
//
// It refuses a nil provider, a route that names no region and no calling
// code, a region or calling code phonenumbers does not know, one named by
// two routes, a Router as a route's provider, and two different providers
// with one name (two routes may share a provider, or a Failover's
// provider, since the name alone tells where a check goes).
func NewRouter(def Provider, routes ...Route) (*Router, error) {
	if def == nil {
		return nil, errorf("Router needs a default provider")
	}
	r := &Router{def: def, regions: map[string]Provider{}, codes: map[string]Provider{}, leaves: map[string]*leaf{}}
	if err := r.add(def, "the default"); err != nil {
		return nil, err
	}
	for i, rt := range routes {
		which := fmt.Sprintf("route %d", i)
		if rt.Provider == nil {
			return nil, errorf("Router: %s has no provider", which)
		}
		if len(rt.Regions)+len(rt.CallingCodes) == 0 {
			return nil, errorf("Router: %s names no region and no calling code", which)
		}
		for _, reg := range rt.Regions {
			if !isRegion(reg) {
				return nil, errorf("Router: %s: region %q is unknown (want an ISO 3166 code such as \"US\")", which, reg)
			}
			if _, dup := r.regions[reg]; dup {
				return nil, errorf("Router: region %q is in two routes", reg)
			}
			r.regions[reg] = rt.Provider
		}
		for _, cc := range rt.CallingCodes {
			if !isCallingCode(cc) {
				return nil, errorf("Router: %s: calling code %q is unknown (want digits without \"+\", such as \"44\")", which, cc)
			}
			if _, dup := r.codes[cc]; dup {
				return nil, errorf("Router: calling code %q is in two routes", cc)
			}
			r.codes[cc] = rt.Provider
		}
		if err := r.add(rt.Provider, which); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// add records a route's provider and the providers that send for it.
func (r *Router) add(p Provider, which string) error {
	if _, nested := p.(*Router); nested {
		return errorf("Router: %s is a Router: routers do not nest", which)
	}
	if !slicesContain(r.routes, p) {
		r.routes = append(r.routes, p)
	}
	f, ok := p.(*Failover)
	if !ok {
		return r.addLeaf(p, nil)
	}
	for i, fp := range f.providers {
		if err := r.addLeaf(fp, &holder{f: f, i: i}); err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) addLeaf(p Provider, h *holder) error {
	l, ok := r.leaves[p.Name()]
	if !ok {
		l = &leaf{p: p}
		r.leaves[p.Name()] = l
	} else if !same(l.p, p) {
		return errorf("Router: two providers are named %q", p.Name())
	}
	if h != nil {
		l.holders = append(l.holders, *h)
	}
	return nil
}

// same reports whether a and b are the same provider; providers of types
// that cannot be compared are never the same.
func same(a, b Provider) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

func slicesContain(ps []Provider, p Provider) bool {
	for _, q := range ps {
		if same(q, p) {
			return true
		}
	}
	return false
}

// Name returns "router"; the Ref of each verification names the provider
// that sent it.
func (r *Router) Name() string { return "router" }

// Supports reports whether the default or any route supports c. The
// Verifier refuses a send on c to a destination whose route does not
// support it with ErrUnsupportedChannel, before it takes any limit's
// token; Send refuses it too, unsent.
func (r *Router) Supports(c Channel) bool {
	for _, p := range r.routes {
		if p.Supports(c) {
			return true
		}
	}
	return false
}

// SupportsDestination reports whether the route of to, a number of region
// (or an address), supports c.
func (r *Router) SupportsDestination(c Channel, to, region string) bool {
	p, err := r.route(SendRequest{To: to, Channel: c, Region: region})
	return err == nil && p.Supports(c)
}

// Send sends through the provider of req's route (see [NewRouter]).
func (r *Router) Send(ctx context.Context, req SendRequest) (Ref, error) {
	p, err := r.route(req)
	if err != nil {
		return Ref{}, err
	}
	if !p.Supports(req.Channel) {
		return Ref{}, &ProviderError{Provider: p.Name(), Op: OpStart, NotSent: true,
			Err: fmt.Errorf("%w: %q on this destination's route", ErrUnsupportedChannel, req.Channel)}
	}
	ref, err := p.Send(ctx, req)
	if err != nil {
		return Ref{}, err
	}
	if _, isFailover := p.(*Failover); !isFailover {
		ref.Provider = p.Name()
	}
	return ref, nil
}

// route returns the provider for req: by region, then calling code, then
// the default. req.Region, as the Verifier sets it, saves parsing the
// number again; the calling code is read off the E.164 digits, since no
// calling code is the prefix of another.
func (r *Router) route(req SendRequest) (Provider, error) {
	if req.Channel == Email || len(r.regions)+len(r.codes) == 0 {
		return r.def, nil
	}
	if !e164(req.To) {
		return nil, &ProviderError{Provider: r.Name(), Op: OpStart, NotSent: true,
			Err: fmt.Errorf("%w: the router needs an E.164 number", ErrInvalidPhone)}
	}
	region := req.Region
	if region == "" && len(r.regions) > 0 {
		if num, err := phonenumbers.Parse(req.To, ""); err == nil {
			m, _ := classify(num)
			region = regionOf(m)
		}
	}
	if p, ok := r.regions[region]; ok {
		return p, nil
	}
	for n := 1; n <= 3 && n < len(req.To); n++ {
		if p, ok := r.codes[req.To[1:1+n]]; ok {
			return p, nil
		}
	}
	return r.def, nil
}

// e164 reports whether s is "+" and 2 to 15 digits.
func e164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// leaf returns the provider that sent ref.
func (r *Router) leaf(ref Ref) (*leaf, error) {
	l, ok := r.leaves[ref.Provider]
	if !ok {
		return nil, fmt.Errorf("%w: router has no provider named %q", ErrNotFound, ref.Provider)
	}
	return l, nil
}

// record feeds an answer of l to the breakers of the Failovers holding it.
func (l *leaf) record(err error) {
	for _, h := range l.holders {
		h.f.record(h.i, err)
	}
}

// Check asks the provider that sent ref.
func (r *Router) Check(ctx context.Context, ref Ref, code string) error {
	l, err := r.leaf(ref)
	if err != nil {
		return err
	}
	err = l.p.Check(ctx, ref, code)
	l.record(err)
	return err
}

// Resend asks the provider that sent ref; one that cannot resend gives an
// error matching errors.ErrUnsupported, and the Verifier starts anew.
func (r *Router) Resend(ctx context.Context, ref Ref) error {
	l, err := r.leaf(ref)
	if err != nil {
		return err
	}
	rs, ok := l.p.(Resender)
	if !ok {
		return fmt.Errorf("otp: %s cannot resend: %w", ref.Provider, errors.ErrUnsupported)
	}
	err = rs.Resend(ctx, ref)
	l.record(err)
	return err
}

// Cancel asks the provider that sent ref; one that cannot cancel gives an
// error matching errors.ErrUnsupported.
func (r *Router) Cancel(ctx context.Context, ref Ref) error {
	l, err := r.leaf(ref)
	if err != nil {
		return err
	}
	c, ok := l.p.(Canceler)
	if !ok {
		return fmt.Errorf("otp: %s cannot cancel: %w", ref.Provider, errors.ErrUnsupported)
	}
	err = c.Cancel(ctx, ref)
	l.record(err)
	return err
}

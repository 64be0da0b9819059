package pricing

// Run is what a recalculation starts from: the trigger generation it covers and the
// global market after folding the market events received so far.
type Run struct {
	Gen     int64  // every trigger up to this generation is covered by the run
	Version int64  // the pricing version the run will publish
	Global  Market // the global market, for list prices
	Events  int    // market events folded in by this run
}

// State is the pricing's progress: triggers requested and covered, and the version of
// the published prices.
type State struct {
	Requested int64 // generation of the last trigger
	Done      int64 // generation covered by the last completed run
	Version   int64 // pricing version: advances when a run completes
	Events    int64 // id of the last market event received
	Applied   int64 // id of the last market event folded into the markets
}

package pipeline

import (
	"context"
	"sync"
	"time"
)

// Precedence lets the consumers of one process give way to a stage that
// comes first: the consumer given it as ConsumerConfig.First counts the
// messages it has in hand (fetched and not yet settled), and a consumer
// given it as ConsumerConfig.YieldTo waits, before each fetch, until that
// count has been zero for a moment (quiet), or for at most its YieldFor. So in a
// backlog (a mailbox drained at the first start) the cases are made
// before their effects compete for the same cores, and no stage that
// yields waits longer than its YieldFor however busy the first one stays.
// Alone (no backlog) a yielding consumer waits about quiet after the first
// stage settled its message. The zero value is ready to use; a nil
// *Precedence never makes anyone wait.
type Precedence struct {
	mu        sync.Mutex
	held      int
	zeroSince time.Time
	waits     int // waits that found the first stage busy
}

// quiet is how long the first stage must have held nothing before a
// yielding consumer fetches.
const quiet = 5 * time.Millisecond

// add counts n messages taken (n > 0) or settled (n < 0) by the first
// stage.
func (p *Precedence) add(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.held += n
	if p.held == 0 {
		p.zeroSince = time.Now()
	}
	p.mu.Unlock()
}

// Waits returns how many times a yielding consumer found the first stage
// busy and waited.
func (p *Precedence) Waits() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waits
}

// wait returns once the first stage has held nothing for quiet, max has
// passed, or ctx ended.
func (p *Precedence) wait(ctx context.Context, max time.Duration) {
	if p == nil || max <= 0 {
		return
	}
	deadline := time.Now().Add(max)
	counted := false
	for ctx.Err() == nil {
		p.mu.Lock()
		now := time.Now()
		free := p.held == 0 && now.Sub(p.zeroSince) >= quiet
		if !free && !counted {
			p.waits++
			counted = true
		}
		p.mu.Unlock()
		if free || !now.Before(deadline) {
			return
		}
		sleep(ctx, min(quiet, deadline.Sub(now)))
	}
}

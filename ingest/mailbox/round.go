package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/eiamtriage/eiamtriage/ingest"
	"github.com/eiamtriage/eiamtriage/internal/config"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
)

// DeadStage is the stage of the watcher's dead letters (eiam.dead.mailbox).
const DeadStage = "mailbox"

// fetchOptions fetch a message's UID and its whole body, leaving \Seen as
// it is.
var fetchOptions = &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}

// catchUp takes in everything the folder holds above the checkpoint:
// UID SEARCH, then UID FETCH in batches, each fetch sent before the one
// before it is read to its end; the mails are submitted by several
// workers, and each batch, once all its mails are submitted, is settled
// (its folder actions, then the checkpoint) in order. It searches again
// until nothing is left but mails waiting for a retry.
func (w *Watcher) catchUp(ctx context.Context, cn *conn, cps *checkpoints) error {
	for {
		uids, err := w.search(cn)
		if err != nil {
			return err
		}
		// What the folder no longer holds cannot hold the checkpoint back.
		for uid := range w.above {
			if _, ok := slices.BinarySearch(uids, uid); !ok {
				delete(w.above, uid)
			}
		}
		now := w.clock.Now()
		var todo, pending []uint32
		for _, uid := range uids {
			st := w.above[uid]
			switch {
			case st == nil || !st.submitted && !now.Before(st.notBefore):
				todo = append(todo, uid)
			case st.submitted && st.action != config.AfterKeep:
				pending = append(pending, uid)
			}
		}
		w.status.update(func(s *Snapshot) { s.Backlog = len(uids) })
		if len(pending) > 0 {
			// Submitted in an earlier session that failed before their
			// folder action.
			w.act(cn, pending)
		}
		if len(todo) == 0 {
			return w.advance(ctx, cps, uids)
		}
		if err := w.round(ctx, cn, cps, uids, todo); err != nil {
			return err
		}
	}
}

// search returns the UIDs above the checkpoint, ascending. `UID SEARCH
// UID n:*` also returns the highest message when its UID is below n: the
// filter drops it.
func (w *Watcher) search(cn *conn) ([]uint32, error) {
	var data *imap.SearchData
	from := imap.UID(w.cp.UID + 1)
	crit := &imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: from, Stop: 0}}}}
	if err := cn.do("UID SEARCH", func() (err error) {
		data, err = cn.c.UIDSearch(crit, nil).Wait()
		return err
	}); err != nil {
		return nil, err
	}
	var uids []uint32
	for _, u := range data.AllUIDs() {
		if uint32(u) > w.cp.UID {
			uids = append(uids, uint32(u))
		}
	}
	slices.Sort(uids)
	return slices.Compact(uids), nil
}

// job is one fetched mail for a worker; result is what became of a UID.
type job struct {
	batch  int
	uid    uint32
	raw    []byte
	weight int64
}

type result struct {
	batch    int
	uid      uint32
	receipt  ingest.Receipt
	err      error
	tooLarge int64  // the mail's size when it is over the limit (never read)
	raw      []byte // kept for the dead letter of a permanent failure
	// end marks the end of a batch's fetch: jobs is how many results
	// the batch has, missing the UIDs the server did not return, and
	// fetchErr the fetch's failure.
	end      bool
	jobs     int
	missing  []uint32
	fetchErr error
}

// round fetches and submits todo (a subset of uids, the folder's UIDs
// above the checkpoint).
func (w *Watcher) round(ctx context.Context, cn *conn, cps *checkpoints, uids, todo []uint32) error {
	var batches [][]uint32
	for b := range slices.Chunk(todo, w.o.Batch) {
		batches = append(batches, b)
	}
	jobs := make(chan job, w.o.Workers)
	results := make(chan result, 2*w.o.Workers)
	sem := semaphore.NewWeighted(w.o.InFlight)
	validity := w.cp.UIDValidity // w.cp changes as batches settle
	var wg sync.WaitGroup
	wg.Go(func() { w.fetchBatches(ctx, cn, batches, jobs, results, sem) })
	for range w.o.Workers {
		wg.Go(func() {
			for j := range jobs {
				rec, err := w.o.Intake.Submit(ctx, j.raw, w.o.Mailbox, w.source(validity, j.uid))
				sem.Release(j.weight)
				r := result{batch: j.batch, uid: j.uid, receipt: rec, err: err}
				if err != nil && len(j.raw) <= event.InlineMax {
					r.raw = j.raw
				}
				results <- r
			}
		})
	}
	go func() { wg.Wait(); close(results) }()

	type batchState struct {
		got, want int
		ended     bool
		fetchErr  error
	}
	states := make([]batchState, len(batches))
	next := 0
	var firstErr error
	for r := range results {
		if r.end {
			st := &states[r.batch]
			st.ended, st.want, st.fetchErr = true, r.jobs, r.fetchErr
			for _, uid := range r.missing {
				w.failed(ctx, uid, nil, r.fetchErr, fmt.Errorf("the server did not return UID %d in its answer to UID FETCH", uid))
			}
		} else {
			states[r.batch].got++
			w.record(ctx, r)
		}
		for next < len(batches) && states[next].ended && states[next].got == states[next].want {
			if firstErr == nil {
				firstErr = states[next].fetchErr
			}
			if firstErr == nil {
				w.act(cn, batches[next])
			}
			if err := w.advance(ctx, cps, uids); err != nil && firstErr == nil {
				firstErr = err
			}
			next++
		}
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// fetchAhead is how many UID FETCH commands are outstanding at once.
const fetchAhead = 2

// fetchBatches sends UID FETCH for each batch, the next one while the
// current one is read, reads the bodies and hands them to the workers.
// Each outstanding command has its own reader: a server may interleave
// the answers of pipelined commands (Dovecot does), and go-imap's reader
// waits until a message's body is read by the command's reader. Each
// batch ends with its end result. It closes jobs.
func (w *Watcher) fetchBatches(ctx context.Context, cn *conn, batches [][]uint32, jobs chan<- job, results chan<- result, sem *semaphore.Weighted) {
	defer close(jobs)
	var progress atomic.Int64
	done := cn.progressGuard("UID FETCH", &progress)
	defer done()
	slots := make(chan struct{}, fetchAhead)
	var readers sync.WaitGroup
	defer readers.Wait()
	var failed atomic.Pointer[error]
	for k, batch := range batches {
		slots <- struct{}{}
		if errp := failed.Load(); errp != nil {
			<-slots
			results <- result{batch: k, end: true, fetchErr: *errp}
			continue
		}
		var set imap.UIDSet
		for _, u := range batch {
			set.AddNum(imap.UID(u))
		}
		cmd := cn.c.Fetch(set, fetchOptions)
		readers.Go(func() {
			defer func() { <-slots }()
			n, seen, err := w.readFetch(ctx, cn, k, batch, cmd, jobs, results, sem, &progress)
			var missing []uint32
			for _, u := range batch {
				if !seen[u] {
					missing = append(missing, u)
				}
			}
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
			results <- result{batch: k, end: true, jobs: n, missing: missing, fetchErr: err}
		})
	}
}

// readFetch reads one UID FETCH to its end. n is the number of results
// it produced (jobs and too-large mails), seen the UIDs that came back.
func (w *Watcher) readFetch(ctx context.Context, cn *conn, k int, batch []uint32, cmd *imapclient.FetchCommand, jobs chan<- job, results chan<- result, sem *semaphore.Weighted, progress *atomic.Int64) (n int, seen map[uint32]bool, err error) {
	seen = make(map[uint32]bool, len(batch))
	inBatch := func(u uint32) bool { _, ok := slices.BinarySearch(batch, u); return ok }
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		var uid uint32
		var raw []byte
		var weight, size int64
		hasBody, tooLarge := false, false
		var rerr error
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = uint32(it.UID)
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil || rerr != nil {
					continue
				}
				size = it.Literal.Size()
				body := tickReader{it.Literal, progress}
				if w.o.MaxSize > 0 && size > w.o.MaxSize {
					// Streamed past, never held: the guard sees it move.
					tooLarge = true
					if _, err := io.Copy(io.Discard, body); err != nil {
						rerr = fmt.Errorf("read past the body of a message over the size limit: %w", err)
					}
					continue
				}
				weight = min(max(size, 1), w.o.InFlight)
				if err := sem.Acquire(ctx, weight); err != nil {
					rerr, weight = err, 0
					continue
				}
				raw = make([]byte, size)
				if _, err := io.ReadFull(body, raw); err != nil {
					rerr = fmt.Errorf("read the body of a message: %w", err)
					continue
				}
				hasBody = true
			}
			progress.Add(1)
		}
		progress.Add(1)
		if rerr != nil {
			sem.Release(weight)
			cmd.Close()
			return n, seen, cn.explain("UID FETCH", rerr)
		}
		if uid == 0 || !inBatch(uid) || seen[uid] || (!hasBody && !tooLarge) {
			sem.Release(weight) // not ours, or no body: the UID counts as missing
			continue
		}
		seen[uid] = true
		n++
		if tooLarge {
			results <- result{batch: k, uid: uid, tooLarge: size}
			continue
		}
		jobs <- job{batch: k, uid: uid, raw: raw, weight: weight}
	}
	if err := cmd.Close(); err != nil {
		return n, seen, cn.explain("UID FETCH", err)
	}
	w.alive()
	return n, seen, nil
}

// tickReader counts each read of a body as progress of the fetch, so that
// a large body that keeps coming is no silence.
type tickReader struct {
	r        io.Reader
	progress *atomic.Int64
}

func (t tickReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.progress.Add(1)
	}
	return n, err
}

// progressGuard closes the connection when a long command makes no
// progress (progress unchanged) for the command timeout.
func (cn *conn) progressGuard(what string, progress *atomic.Int64) (done func()) {
	stop, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		last := progress.Load()
		for {
			t := cn.w.clock.NewTimer(cn.w.o.CommandTimeout)
			select {
			case <-stop:
				t.Stop()
				return
			case <-t.C():
			}
			if now := progress.Load(); now != last {
				last = now
				continue
			}
			cn.expired.Store(&what)
			cn.c.Close()
			return
		}
	}()
	return func() { close(stop); <-exited }
}

// state returns the state of uid, creating it.
func (w *Watcher) state(uid uint32) *uidState {
	st := w.above[uid]
	if st == nil {
		st = &uidState{action: config.AfterKeep}
		w.above[uid] = st
	}
	return st
}

// record takes note of what Submit did with a mail.
func (w *Watcher) record(ctx context.Context, r result) {
	log := w.log.With(zap.Uint32("uid", r.uid))
	switch {
	case r.tooLarge > 0 || errors.Is(r.err, ingest.ErrTooLarge):
		size := r.tooLarge
		if size == 0 {
			size = int64(len(r.raw))
		}
		w.dead(ctx, r.uid, fmt.Sprintf("the mail is %d bytes, over the size limit pipeline.max_mail_size (%d bytes): it was not taken in and stays in the folder; "+
			"read it there, or raise the limit and reset the checkpoint", size, w.o.MaxSize), nil, true)
	case r.err == nil:
		st := w.state(r.uid)
		st.submitted, st.lastErr = true, nil
		st.action = w.o.AfterOther
		if rd := r.receipt.Reading; rd.Notice != nil && rd.Trust != nil && rd.Trust.Trusted {
			st.action = w.o.After
		}
		w.status.update(func(s *Snapshot) {
			if r.receipt.Duplicate {
				s.Duplicates++
			} else {
				s.Submitted++
			}
		})
	case ctx.Err() != nil:
		// Shutting down: taken in again by the next run.
	case pipeline.IsPermanent(r.err):
		log.Error("the mail cannot be taken in", zap.Error(r.err))
		w.dead(ctx, r.uid, "the mail cannot be taken in: "+r.err.Error(), r.raw, true)
	default:
		w.failed(ctx, r.uid, r.raw, nil, r.err)
	}
}

// failed counts a failed attempt at uid: fetched again after the retry
// delay, or a dead letter once MaxAttempts attempts failed. A failure of
// the connection (connErr) is no attempt: the mail is not at fault.
func (w *Watcher) failed(ctx context.Context, uid uint32, raw []byte, connErr, err error) {
	if connErr != nil || ctx.Err() != nil {
		return
	}
	st := w.state(uid)
	st.attempts++
	st.lastErr = err
	w.status.update(func(s *Snapshot) { s.Retry++ })
	if st.attempts >= w.o.MaxAttempts {
		w.log.Error("giving up on a mail after repeated failures", zap.Uint32("uid", uid), zap.Int("attempts", st.attempts), zap.Error(err))
		w.dead(ctx, uid, fmt.Sprintf("%d attempts to take the mail in failed (pipeline.max_deliver), the last: %v", st.attempts, err), raw, false)
		return
	}
	delay := w.o.Retry[min(st.attempts-1, len(w.o.Retry)-1)]
	st.notBefore = w.clock.Now().Add(delay)
	w.log.Warn("a mail could not be taken in; trying again", zap.Uint32("uid", uid), zap.Int("attempt", st.attempts), zap.Duration("in", delay), zap.Error(err))
}

// dead records a dead letter for uid, naming mailbox, folder and UID; once
// it is stored the checkpoint may pass the UID. If it cannot be stored the
// UID is tried again later.
func (w *Watcher) dead(ctx context.Context, uid uint32, reason string, raw []byte, permanent bool) {
	st := w.state(uid)
	source := w.source(w.cp.UIDValidity, uid)
	dl := event.DeadLetter{
		Stage:           DeadStage,
		Reason:          fmt.Sprintf("mailbox %s, folder %q, UID %d (UIDVALIDITY %d): %s", w.o.Mailbox, w.o.Folder, uid, w.cp.UIDValidity, reason),
		Permanent:       permanent,
		Deliveries:      uint64(max(st.attempts, 1)),
		OriginalSubject: source,
		Headers: map[string][]string{
			"Mailbox": {w.o.Mailbox}, "Folder": {w.o.Folder},
			"Uidvalidity": {strconv.FormatUint(uint64(w.cp.UIDValidity), 10)}, "Uid": {strconv.FormatUint(uint64(uid), 10)},
		},
		At: w.clock.Now().UTC(),
	}
	if raw != nil {
		dl.SetOriginal(raw)
	}
	id := fmt.Sprintf("mailbox-%s-%s-%d-%d", w.o.Mailbox, CheckpointKey("", w.o.Folder)[1:], w.cp.UIDValidity, uid)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pipeline.PublishDead(pctx, w.o.JS, dl, id, ""); err != nil {
		w.log.Error("cannot record the dead letter of a mail; trying again later", zap.Uint32("uid", uid), zap.Error(err))
		st.lastErr = err
		st.notBefore = w.clock.Now().Add(w.o.Retry[0])
		return
	}
	w.log.Warn("a mail became a dead letter", zap.Uint32("uid", uid), zap.String("reason", reason))
	st.submitted, st.action, st.lastErr = true, config.AfterKeep, nil
	w.status.update(func(s *Snapshot) { s.DeadLetters++ })
}

// act does the folder actions of the submitted mails among uids: \Seen or
// MOVE. A refusal of the server (NO) is logged and the mail left where it
// is; a failed connection leaves the action to do, and the checkpoint
// waits for it.
func (w *Watcher) act(cn *conn, uids []uint32) {
	var seen, move imap.UIDSet
	var seenUIDs, moveUIDs []uint32
	for _, u := range uids {
		st := w.above[u]
		if st == nil || !st.submitted {
			continue
		}
		switch st.action {
		case config.AfterSeen:
			seen.AddNum(imap.UID(u))
			seenUIDs = append(seenUIDs, u)
		case config.AfterMove:
			move.AddNum(imap.UID(u))
			moveUIDs = append(moveUIDs, u)
		}
	}
	finish := func(what string, list []uint32, err error) {
		var ie *imap.Error
		switch {
		case err == nil:
		case errors.As(err, &ie):
			w.log.Error("the server refused a folder action: the mails stay where they are", zap.String("action", what), zap.Int("mails", len(list)), zap.Error(err))
		default:
			w.log.Warn("a folder action failed; it is done again after reconnecting", zap.String("action", what), zap.Int("mails", len(list)), zap.Error(err))
			return
		}
		for _, u := range list {
			w.above[u].action = config.AfterKeep
		}
	}
	if len(seenUIDs) > 0 {
		err := cn.do("UID STORE +FLAGS (\\Seen)", func() error {
			return cn.c.Store(seen, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
		})
		finish("seen", seenUIDs, err)
	}
	if len(moveUIDs) > 0 {
		finish("move to "+strconv.Quote(w.o.MoveTo), moveUIDs, w.move(cn, move))
	}
}

// move moves the mails to MoveTo: MOVE when the server has it; else COPY,
// and only once the copy is confirmed, \Deleted and UID EXPUNGE of exactly
// these UIDs (UIDPLUS). Without UIDPLUS the originals stay flagged
// \Deleted: a plain EXPUNGE would remove other clients' deleted mail too.
// go-imap's Move is not used without MOVE: its fallback flags and expunges
// without waiting for the COPY, and a failed COPY loses the mail.
func (w *Watcher) move(cn *conn, set imap.UIDSet) error {
	if cn.caps.Has(imap.CapMove) {
		return cn.do("UID MOVE", func() error { _, err := cn.c.Move(set, w.o.MoveTo).Wait(); return err })
	}
	if err := cn.do("UID COPY", func() error { _, err := cn.c.Copy(set, w.o.MoveTo).Wait(); return err }); err != nil {
		return err
	}
	if err := cn.do("UID STORE +FLAGS (\\Deleted)", func() error {
		return cn.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	}); err != nil {
		return err
	}
	if !cn.caps.Has(imap.CapUIDPlus) {
		if !cn.noUIDPlusLogged {
			w.log.Warn("the server has neither MOVE nor UIDPLUS: moved mails are copied and their originals only flagged \\Deleted, never expunged")
			cn.noUIDPlusLogged = true
		}
		return nil
	}
	return cn.do("UID EXPUNGE", func() error { return cn.c.UIDExpunge(set).Close() })
}

// advance moves the checkpoint over the UIDs (ascending, all above the
// checkpoint) that are submitted with nothing left to do, up to the first
// that is not, and writes it.
func (w *Watcher) advance(ctx context.Context, cps *checkpoints, uids []uint32) error {
	cp := w.cp
	for _, u := range uids {
		if u <= cp.UID {
			continue
		}
		st := w.above[u]
		if st == nil || !st.submitted || st.action != config.AfterKeep {
			break
		}
		cp.UID = u
	}
	if cp.UID == w.cp.UID {
		return nil
	}
	cp.At = w.clock.Now().UTC()
	if err := cps.save(ctx, cp); err != nil {
		if errors.Is(err, errLeaseLost) {
			return fmt.Errorf("mailbox %s: %w", w.o.Mailbox, err)
		}
		// Not written: the UIDs stay done in memory; the next batch writes.
		w.log.Warn("cannot write the checkpoint; trying again with the next batch", zap.Error(err))
		return nil
	}
	for u := range w.above {
		if u <= cp.UID {
			delete(w.above, u)
		}
	}
	w.cp = cp
	w.status.update(func(s *Snapshot) { s.Checkpoint = cp })
	return nil
}

// nextRetry returns when the earliest failed UID may be tried again.
func (w *Watcher) nextRetry() (time.Time, bool) {
	var at time.Time
	ok := false
	for _, st := range w.above {
		if !st.submitted && (!ok || st.notBefore.Before(at)) {
			at, ok = st.notBefore, true
		}
	}
	return at, ok
}

package group

import (
	"bytes"
	"time"

	"github.com/poste-io/poste/internal/coord"
)

// merge combines the results of several steps of one operation.
func merge(a, b coord.Result) coord.Result {
	a.Records = append(a.Records, b.Records...)
	switch {
	case a.Done == nil:
		a.Done = b.Done
	case b.Done != nil:
		da, db := a.Done, b.Done
		a.Done = func(err error) { da(err); db(err) }
	}
	return a
}

// Join handles a JoinGroup request; cb is called exactly once, now or when the join completes.
func (s *Shard) Join(now time.Time, req JoinRequest, cb func(JoinResult)) coord.Result {
	fail := func(err error, memberID string) coord.Result {
		cb(JoinResult{Err: err, Generation: -1, MemberID: memberID})
		return coord.Result{}
	}
	if req.Group == "" {
		return fail(ErrInvalidGroupID, req.MemberID)
	}
	if req.SessionTimeout < s.cfg.MinSessionTimeout || req.SessionTimeout > s.cfg.MaxSessionTimeout {
		return fail(ErrInvalidSessionTimeout, req.MemberID)
	}
	if req.RebalanceTimeout <= 0 {
		req.RebalanceTimeout = req.SessionTimeout // v0 has none: Kafka uses the session timeout
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fail(ErrInconsistentProtocol, req.MemberID)
	}
	g := s.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return fail(ErrUnknownMember, req.MemberID)
		}
		g = newGroup(req.Group, now)
		s.groups[req.Group] = g
	}
	if g.state == Dead {
		return fail(ErrCoordinatorNotAvail, req.MemberID)
	}
	if g.cg != nil {
		// A KIP-848 group: refused while it has members; an empty one becomes classic.
		if len(g.cg.members) > 0 {
			return fail(ErrInconsistentProtocol, req.MemberID)
		}
		return merge(coord.Result{Records: s.dropConsumerGroup(g)}, s.Join(now, req, cb))
	}
	if !compatible(g, &req) {
		return fail(ErrInconsistentProtocol, req.MemberID)
	}
	full := s.cfg.MaxSize > 0 && len(g.members)+len(g.pending) >= s.cfg.MaxSize

	if req.MemberID == "" {
		if req.InstanceID != nil {
			if old, ok := g.static[*req.InstanceID]; ok {
				return s.replaceStatic(now, g, old, req, cb)
			}
		}
		if full {
			return fail(ErrGroupMaxSize, "")
		}
		id := s.cfg.NewMemberID(req.ClientID)
		if req.RequireKnownMemberID && req.InstanceID == nil {
			// KIP-394: the member comes back with its id, so a client that gave up on this
			// answer leaves no ghost member behind; the id expires after a session timeout.
			g.pending[id] = true
			gid := g.id
			s.timers.Schedule(pendingKey(gid, id), now.Add(req.SessionTimeout), func(now time.Time) coord.Result {
				return s.expirePending(now, gid, id)
			})
			return fail(ErrMemberIDRequired, id)
		}
		return s.addAndRebalance(now, g, id, &req, cb)
	}

	if g.pending[req.MemberID] {
		delete(g.pending, req.MemberID)
		s.timers.Cancel(pendingKey(g.id, req.MemberID))
		return s.addAndRebalance(now, g, req.MemberID, &req, cb)
	}
	m := g.members[req.MemberID]
	if req.InstanceID != nil {
		if cur, ok := g.static[*req.InstanceID]; ok && cur != req.MemberID {
			return fail(ErrFencedInstance, req.MemberID)
		}
	}
	if m == nil {
		return fail(ErrUnknownMember, req.MemberID)
	}
	switch g.state {
	case PreparingRebalance:
		s.updateMember(g, m, &req, cb, now)
		return s.tryCompleteJoin(now, g)
	case CompletingRebalance:
		if sameProtocols(m, &req) {
			// A retried join: answer with the generation in progress.
			cb(s.joinAnswer(g, m, g.leader == m.id))
			return coord.Result{}
		}
		s.updateMember(g, m, &req, cb, now)
		return s.prepareRebalance(now, g)
	case Stable:
		if m.id == g.leader || !sameProtocols(m, &req) {
			// The leader rejoining, or a member whose subscription changed, starts a rebalance.
			s.updateMember(g, m, &req, cb, now)
			return s.prepareRebalance(now, g)
		}
		s.scheduleHeartbeat(g, m, now)
		cb(s.joinAnswer(g, m, false))
		return coord.Result{}
	}
	return fail(ErrUnknownMember, req.MemberID)
}

// compatible reports whether a joining member fits the group's protocol type and shares a
// protocol with every current member.
func compatible(g *group, req *JoinRequest) bool {
	if len(g.members) == 0 {
		return true
	}
	if req.ProtocolType != g.protocolType {
		return false
	}
	for _, p := range req.Protocols {
		all := true
		for _, m := range g.members {
			if m.id != req.MemberID && !hasProtocol(m, p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func hasProtocol(m *member, name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func sameProtocols(m *member, req *JoinRequest) bool {
	if len(m.protocols) != len(req.Protocols) {
		return false
	}
	for i, p := range req.Protocols {
		if m.protocols[i].Name != p.Name || !bytes.Equal(m.protocols[i].Metadata, p.Metadata) {
			return false
		}
	}
	return true
}

// joinAnswer is the join response of member m in the current generation.
func (s *Shard) joinAnswer(g *group, m *member, withMembers bool) JoinResult {
	r := JoinResult{Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol,
		LeaderID: g.leader, MemberID: m.id}
	if withMembers {
		for _, id := range g.order {
			o := g.members[id]
			r.Members = append(r.Members, JoinMember{MemberID: o.id, InstanceID: o.instanceID, Metadata: o.metadataFor(g.protocol)})
		}
	}
	return r
}

func (s *Shard) updateMember(g *group, m *member, req *JoinRequest, cb func(JoinResult), now time.Time) {
	if m.joinCb != nil {
		m.joinCb(JoinResult{Err: ErrRebalanceInProgress, Generation: -1, MemberID: m.id})
	}
	m.joinCb = cb
	m.clientID, m.host = req.ClientID, req.ClientHost
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.protocols = append([]Protocol(nil), req.Protocols...)
	m.supportsSkip = req.SupportsSkipAssign
	s.scheduleHeartbeat(g, m, now)
}

func (s *Shard) addAndRebalance(now time.Time, g *group, id string, req *JoinRequest, cb func(JoinResult)) coord.Result {
	m := &member{id: id, instanceID: req.InstanceID, protocolType: req.ProtocolType}
	s.updateMember(g, m, req, cb, now)
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.add(m)
	if g.state == PreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	return s.maybeRebalance(now, g)
}

func (s *Shard) maybeRebalance(now time.Time, g *group) coord.Result {
	switch g.state {
	case Empty, Stable, CompletingRebalance:
		return s.prepareRebalance(now, g)
	case PreparingRebalance:
		return s.tryCompleteJoin(now, g)
	}
	return coord.Result{}
}

func rebalanceTimeout(g *group) time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// prepareRebalance moves g to PreparingRebalance: the members have until the rebalance
// timeout to rejoin. A group leaving Empty first waits group.initial.rebalance.delay.ms,
// extended while members keep arriving, up to the rebalance timeout.
func (s *Shard) prepareRebalance(now time.Time, g *group) coord.Result {
	if g.state == CompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.syncCb != nil {
				m.syncCb(SyncResult{Err: ErrRebalanceInProgress})
				m.syncCb = nil
			}
		}
	}
	gid := g.id
	rt := rebalanceTimeout(g)
	if g.state == Empty && s.cfg.InitialRebalanceDelay > 0 {
		g.initialDelay, g.newMemberAdded = true, false
		delay := min(s.cfg.InitialRebalanceDelay, rt)
		g.delayRemaining = max(rt-s.cfg.InitialRebalanceDelay, 0)
		s.timers.Schedule(joinKey(gid), now.Add(delay), func(now time.Time) coord.Result { return s.initialJoinExpired(now, gid) })
	} else {
		g.initialDelay = false
		s.timers.Schedule(joinKey(gid), now.Add(rt), func(now time.Time) coord.Result { return s.joinExpired(now, gid) })
	}
	g.transition(PreparingRebalance, now)
	return s.tryCompleteJoin(now, g)
}

// tryCompleteJoin completes the join early once every member has rejoined.
func (s *Shard) tryCompleteJoin(now time.Time, g *group) coord.Result {
	if g.state != PreparingRebalance || g.initialDelay {
		return coord.Result{}
	}
	if g.awaitingJoin() == len(g.members) && len(g.pending) == 0 {
		s.timers.Cancel(joinKey(g.id))
		return s.completeJoin(now, g)
	}
	return coord.Result{}
}

func (s *Shard) joinExpired(now time.Time, gid string) coord.Result {
	g := s.groups[gid]
	if g == nil || g.state != PreparingRebalance {
		return coord.Result{}
	}
	return s.completeJoin(now, g)
}

func (s *Shard) initialJoinExpired(now time.Time, gid string) coord.Result {
	g := s.groups[gid]
	if g == nil || g.state != PreparingRebalance || !g.initialDelay {
		return coord.Result{}
	}
	if g.newMemberAdded && g.delayRemaining > 0 {
		delay := min(s.cfg.InitialRebalanceDelay, g.delayRemaining)
		g.delayRemaining -= delay
		g.newMemberAdded = false
		s.timers.Schedule(joinKey(gid), now.Add(delay), func(now time.Time) coord.Result { return s.initialJoinExpired(now, gid) })
		return coord.Result{}
	}
	g.initialDelay = false
	return s.completeJoin(now, g)
}

// completeJoin ends PreparingRebalance: members that did not rejoin are removed, the
// generation advances, a protocol is chosen and every member gets its join answer (the
// leader with the member list). An empty group is stored as such.
func (s *Shard) completeJoin(now time.Time, g *group) coord.Result {
	for _, id := range append([]string(nil), g.order...) {
		if g.members[id].joinCb == nil {
			s.timers.Cancel(hbKey(g.id, id))
			g.remove(id)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.transition(Empty, now)
		g.stored = true
		return coord.Result{Records: []coord.Record{groupRecord(g)}}
	}
	g.protocol = selectProtocol(g)
	g.transition(CompletingRebalance, now)
	for _, id := range g.order {
		m := g.members[id]
		cb := m.joinCb
		m.joinCb = nil
		r := s.joinAnswer(g, m, id == g.leader)
		cb(r)
		s.scheduleHeartbeat(g, m, now)
	}
	return coord.Result{}
}

// selectProtocol picks the protocol every member supports that most members prefer; ties go
// to the protocol the earliest member lists first.
func selectProtocol(g *group) string {
	if len(g.order) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range g.members[g.order[0]].protocols {
		all := true
		for _, m := range g.members {
			if !hasProtocol(m, p.Name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, id := range g.order {
		for _, p := range g.members[id].protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// replaceStatic lets a static member (group.instance.id) rejoin under a new member id: the
// old id is fenced; a stable group whose protocol does not change keeps its assignment and
// generation (KIP-345).
func (s *Shard) replaceStatic(now time.Time, g *group, oldID string, req JoinRequest, cb func(JoinResult)) coord.Result {
	m := g.members[oldID]
	newID := s.cfg.NewMemberID(req.ClientID)
	if m.joinCb != nil {
		m.joinCb(JoinResult{Err: ErrFencedInstance, Generation: -1, MemberID: oldID})
		m.joinCb = nil
	}
	if m.syncCb != nil {
		m.syncCb(SyncResult{Err: ErrFencedInstance})
		m.syncCb = nil
	}
	s.timers.Cancel(hbKey(g.id, oldID))
	prev := *m
	rename(g, oldID, newID)
	switch g.state {
	case Stable:
		m.clientID, m.host = req.ClientID, req.ClientHost
		m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
		oldProtocols := m.protocols
		m.protocols = append([]Protocol(nil), req.Protocols...)
		if selectProtocol(g) != g.protocol {
			s.updateMember(g, m, &req, cb, now)
			return s.prepareRebalance(now, g)
		}
		s.scheduleHeartbeat(g, m, now)
		gen := g.generation
		return coord.Result{Records: []coord.Record{groupRecord(g)}, Done: func(err error) {
			if err != nil {
				if g.members[newID] == m && g.generation == gen {
					rename(g, newID, oldID)
					s.timers.Cancel(hbKey(g.id, newID))
					*m = prev
					m.protocols = oldProtocols
					s.scheduleHeartbeat(g, m, now)
				}
				cb(JoinResult{Err: err, Generation: -1})
				return
			}
			leader := g.leader == newID
			r := s.joinAnswer(g, m, leader && req.SupportsSkipAssign)
			r.SkipAssignment = leader && req.SupportsSkipAssign
			cb(r)
		}}
	case CompletingRebalance:
		s.updateMember(g, m, &req, cb, now)
		return s.prepareRebalance(now, g)
	default: // PreparingRebalance
		s.updateMember(g, m, &req, cb, now)
		return s.tryCompleteJoin(now, g)
	}
}

// rename gives member from the id to, keeping its place, assignment and leadership.
func rename(g *group, from, to string) {
	m := g.members[from]
	delete(g.members, from)
	m.id = to
	g.members[to] = m
	for i, id := range g.order {
		if id == from {
			g.order[i] = to
		}
	}
	if m.instanceID != nil {
		g.static[*m.instanceID] = to
	}
	if g.leader == from {
		g.leader = to
	}
}

func (s *Shard) scheduleHeartbeat(g *group, m *member, now time.Time) {
	gid, mid := g.id, m.id
	s.timers.Schedule(hbKey(gid, mid), now.Add(m.sessionTimeout), func(now time.Time) coord.Result {
		return s.heartbeatExpired(now, gid, mid)
	})
}

// heartbeatExpired removes a member whose session timed out; a member waiting for a join or
// sync answer is kept alive meanwhile, as Kafka does.
func (s *Shard) heartbeatExpired(now time.Time, gid, mid string) coord.Result {
	g := s.groups[gid]
	if g == nil {
		return coord.Result{}
	}
	m := g.members[mid]
	if m == nil {
		return coord.Result{}
	}
	if m.joinCb != nil || m.syncCb != nil {
		s.scheduleHeartbeat(g, m, now)
		return coord.Result{}
	}
	return s.removeMember(now, g, m)
}

func (s *Shard) expirePending(now time.Time, gid, id string) coord.Result {
	g := s.groups[gid]
	if g == nil || !g.pending[id] {
		return coord.Result{}
	}
	delete(g.pending, id)
	return s.tryCompleteJoin(now, g)
}

// removeMember drops m from g and rebalances what remains.
func (s *Shard) removeMember(now time.Time, g *group, m *member) coord.Result {
	s.timers.Cancel(hbKey(g.id, m.id))
	if m.joinCb != nil {
		m.joinCb(JoinResult{Err: ErrUnknownMember, Generation: -1, MemberID: m.id})
		m.joinCb = nil
	}
	if m.syncCb != nil {
		m.syncCb(SyncResult{Err: ErrUnknownMember})
		m.syncCb = nil
	}
	g.remove(m.id)
	switch g.state {
	case Stable, CompletingRebalance:
		return s.prepareRebalance(now, g)
	case PreparingRebalance:
		return s.tryCompleteJoin(now, g)
	}
	return coord.Result{}
}

// checkMember applies the checks SyncGroup, Heartbeat and OffsetCommit share.
func checkMember(g *group, memberID string, instanceID *string, generation int32) (*member, error) {
	if instanceID != nil {
		if cur, ok := g.static[*instanceID]; ok && cur != memberID {
			return nil, ErrFencedInstance
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, ErrUnknownMember
	}
	if generation != g.generation {
		return m, ErrIllegalGeneration
	}
	return m, nil
}

// Sync handles a SyncGroup request; cb is called exactly once, now or when the leader's
// assignment is stored.
func (s *Shard) Sync(now time.Time, req SyncRequest, cb func(SyncResult)) coord.Result {
	g := s.groups[req.Group]
	if g == nil || g.state == Dead {
		cb(SyncResult{Err: ErrUnknownMember})
		return coord.Result{}
	}
	m, err := checkMember(g, req.MemberID, req.InstanceID, req.Generation)
	if err == nil && ((req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol)) {
		err = ErrInconsistentProtocol
	}
	if err != nil {
		cb(SyncResult{Err: err})
		return coord.Result{}
	}
	switch g.state {
	case PreparingRebalance:
		cb(SyncResult{Err: ErrRebalanceInProgress})
		return coord.Result{}
	case Stable:
		s.scheduleHeartbeat(g, m, now)
		cb(SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment})
		return coord.Result{}
	case CompletingRebalance:
	default:
		cb(SyncResult{Err: ErrUnknownMember})
		return coord.Result{}
	}
	if m.syncCb != nil {
		m.syncCb(SyncResult{Err: ErrRebalanceInProgress})
	}
	m.syncCb = cb
	s.scheduleHeartbeat(g, m, now)
	if m.id != g.leader {
		return coord.Result{}
	}
	for _, o := range g.members {
		o.assignment = req.Assignments[o.id]
		if o.assignment == nil {
			o.assignment = []byte{}
		}
	}
	gen := g.generation
	gid := g.id
	return coord.Result{Records: []coord.Record{groupRecord(g)}, Done: func(err error) {
		if s.groups[gid] != g || g.state != CompletingRebalance || g.generation != gen {
			return // superseded: the callbacks were answered by the rebalance that followed
		}
		if err != nil {
			for _, o := range g.members {
				o.assignment = nil
				if o.syncCb != nil {
					o.syncCb(SyncResult{Err: err})
					o.syncCb = nil
				}
			}
			// Rebalance again, from a timer because this callback cannot write records.
			s.timers.Schedule(joinKey(gid), now, func(now time.Time) coord.Result {
				if s.groups[gid] != g || g.state != CompletingRebalance {
					return coord.Result{}
				}
				return s.prepareRebalance(now, g)
			})
			return
		}
		g.stored = true
		g.transition(Stable, now)
		for _, id := range g.order {
			o := g.members[id]
			if o.syncCb != nil {
				o.syncCb(SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: o.assignment})
				o.syncCb = nil
			}
		}
	}}
}

// Heartbeat handles a Heartbeat request.
func (s *Shard) Heartbeat(now time.Time, req HeartbeatRequest) error {
	g := s.groups[req.Group]
	if g == nil || g.state == Dead {
		return ErrUnknownMember
	}
	m, err := checkMember(g, req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		return err
	}
	switch g.state {
	case Empty:
		return ErrUnknownMember
	case PreparingRebalance:
		s.scheduleHeartbeat(g, m, now)
		return ErrRebalanceInProgress
	}
	s.scheduleHeartbeat(g, m, now)
	return nil
}

// Leave handles a LeaveGroup request.
func (s *Shard) Leave(now time.Time, groupID string, members []LeaveMember) (coord.Result, LeaveResult) {
	res := LeaveResult{Members: make([]error, len(members))}
	g := s.groups[groupID]
	if g == nil || g.state == Dead {
		for i := range res.Members {
			res.Members[i] = ErrUnknownMember
		}
		return coord.Result{}, res
	}
	var out coord.Result
	for i, lm := range members {
		id := lm.MemberID
		if lm.InstanceID != nil {
			cur, ok := g.static[*lm.InstanceID]
			switch {
			case !ok:
				res.Members[i] = ErrUnknownMember
				continue
			case id != "" && id != cur:
				res.Members[i] = ErrFencedInstance
				continue
			}
			id = cur
		}
		if g.pending[id] {
			delete(g.pending, id)
			s.timers.Cancel(pendingKey(g.id, id))
			out = merge(out, s.tryCompleteJoin(now, g))
			continue
		}
		m := g.members[id]
		if m == nil {
			res.Members[i] = ErrUnknownMember
			continue
		}
		out = merge(out, s.removeMember(now, g, m))
	}
	return out, res
}

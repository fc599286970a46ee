package metadata

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// raftLogger routes hashicorp/raft's hclog output into slog. Raft is chatty at
// info level (every election, every snapshot), so only warnings and errors
// pass; the level is fixed. Safe for concurrent use, as slog is.
type raftLogger struct {
	l    *slog.Logger
	name string
	args []any
}

var _ hclog.Logger = (*raftLogger)(nil)

// routineWarnings are raft warnings that every healthy start produces (the
// self-election of a one-voter quorum, an observer waiting to be added);
// they go to debug so a healthy start logs no warning.
var routineWarnings = map[string]bool{
	"heartbeat timeout reached, starting election":        true,
	"no known peers, aborting election":                   true,
	"not part of stable configuration, aborting election": true,
	"heartbeat timeout reached, not part of a stable configuration or a non-voter, not triggering a leader election": true,
}

func newRaftLogger(l *slog.Logger) *raftLogger {
	return &raftLogger{l: l, name: "raft"}
}

func (r *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	var sl slog.Level
	switch {
	case shuttingDown(args):
		// Connections torn down by this node's own Close.
		sl = slog.LevelDebug
	case level >= hclog.Error:
		sl = slog.LevelError
	case level == hclog.Warn && routineWarnings[msg]:
		sl = slog.LevelDebug
	case level == hclog.Warn:
		sl = slog.LevelWarn
	default:
		return
	}
	attrs := append([]any{"component", r.name}, r.args...)
	r.l.Log(context.Background(), sl, msg, append(attrs, args...)...)
}

func shuttingDown(args []any) bool {
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, raft.ErrTransportShutdown) {
			return true
		}
	}
	return false
}

func (r *raftLogger) Trace(string, ...any)          {}
func (r *raftLogger) Debug(string, ...any)          {}
func (r *raftLogger) Info(string, ...any)           {}
func (r *raftLogger) Warn(msg string, args ...any)  { r.Log(hclog.Warn, msg, args...) }
func (r *raftLogger) Error(msg string, args ...any) { r.Log(hclog.Error, msg, args...) }
func (r *raftLogger) IsTrace() bool                 { return false }
func (r *raftLogger) IsDebug() bool                 { return false }
func (r *raftLogger) IsInfo() bool                  { return false }
func (r *raftLogger) IsWarn() bool                  { return true }
func (r *raftLogger) IsError() bool                 { return true }
func (r *raftLogger) ImpliedArgs() []any            { return r.args }
func (r *raftLogger) Name() string                  { return r.name }
func (r *raftLogger) SetLevel(hclog.Level)          {}
func (r *raftLogger) GetLevel() hclog.Level         { return hclog.Warn }

func (r *raftLogger) With(args ...any) hclog.Logger {
	return &raftLogger{l: r.l, name: r.name, args: append(append([]any(nil), r.args...), args...)}
}

func (r *raftLogger) Named(name string) hclog.Logger {
	return &raftLogger{l: r.l, name: r.name + "." + name, args: r.args}
}

func (r *raftLogger) ResetNamed(name string) hclog.Logger {
	return &raftLogger{l: r.l, name: name, args: r.args}
}

func (r *raftLogger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(r.l.Handler(), slog.LevelWarn)
}

func (r *raftLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return r.StandardLogger(opts).Writer()
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Sentinel errors. Commands wrap them with the detail a person needs; ExitCode maps them.
var (
	// ErrUsage marks wrong flags or arguments.
	ErrUsage = errors.New("usage")
	// ErrUnreachable: no broker answered. The message names the address and the cause.
	ErrUnreachable = errors.New("cannot reach broker")
	// ErrUnknownTopic: a topic named on the command line does not exist.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrNotAuthorized: the broker denied the request.
	ErrNotAuthorized = errors.New("not authorised")
	// ErrUnsupported: the broker does not implement the request the command needs.
	ErrUnsupported = errors.New("not supported by the broker")
)

// usageErr carries a usage problem; errors.Is(err, ErrUsage) holds and the message is the
// problem itself.
type usageErr struct{ err error }

func (e usageErr) Error() string   { return e.err.Error() }
func (e usageErr) Unwrap() []error { return []error{e.err, ErrUsage} }

func usageError(err error) error { return usageErr{err} }

func usagef(format string, args ...any) error { return usageError(fmt.Errorf(format, args...)) }

// unreachable builds the error for a failed connection attempt to the seed brokers.
func unreachable(seeds []string, err error) error {
	addr := strings.Join(seeds, ", ")
	if len(seeds) > 1 {
		addr = "any of " + addr
	}
	return fmt.Errorf("%w %s: %s", ErrUnreachable, addr, connCause(err))
}

// connCause reduces a dial error to the part a person acts on: "connection refused" rather
// than "dial tcp 127.0.0.1:9092: connect: connection refused".
func connCause(err error) string {
	var errno syscall.Errno
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "no such host " + dns.Name
		}
		return dns.Err + " (" + dns.Name + ")"
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// isDialError reports whether err is a failure to connect (as opposed to a broker's answer).
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// tooOld reports whether the client refused to send a request because the broker does not
// advertise its API key (franz-go has no exported sentinel for this), and the request's
// name when known.
func tooOld(err error) (bool, string) {
	const msg = "broker is too old"
	if err == nil || !strings.Contains(err.Error(), msg) {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) {
			return false, ""
		}
		for _, e := range se.Errs {
			if e.Err != nil && strings.Contains(e.Err.Error(), msg) {
				return true, se.Name
			}
		}
		return false, ""
	}
	var se *kadm.ShardErrors
	if errors.As(err, &se) {
		return true, se.Name
	}
	return true, ""
}

// isAuthError reports whether err is one of Kafka's authorisation failures.
func isAuthError(err error) bool {
	for _, e := range []error{
		kerr.ClusterAuthorizationFailed, kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed,
		kerr.TransactionalIDAuthorizationFailed, kerr.DelegationTokenAuthorizationFailed,
		kerr.SaslAuthenticationFailed,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// explain turns a client or broker error into one a person understands, wrapping the
// matching sentinel. what names the operation ("create topic", "describe configs"), topic
// the topic concerned if any; seeds are the brokers the client was given.
func explain(err error, what, topic string, seeds []string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUsage), errors.Is(err, ErrUnreachable), errors.Is(err, ErrUnknownTopic),
		errors.Is(err, ErrNotAuthorized), errors.Is(err, ErrUnsupported):
		return err
	case isDialError(err):
		return unreachable(seeds, err)
	case errors.Is(err, kerr.UnknownTopicOrPartition) && topic != "":
		return fmt.Errorf("%w %q", ErrUnknownTopic, topic)
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("%w: %s", ErrUnknownTopic, what)
	case isAuthError(err):
		return fmt.Errorf("%w to %s: %v", ErrNotAuthorized, what, kerrMessage(err))
	}
	if old, name := tooOld(err); old {
		if name == "" {
			return fmt.Errorf("%s: %w", what, ErrUnsupported)
		}
		return fmt.Errorf("%s: %w (it does not serve %s)", what, ErrUnsupported, name)
	}
	return fmt.Errorf("%s: %v", what, kerrMessage(err))
}

// kerrMessage prints a Kafka error as "NAME: description" when it is one.
func kerrMessage(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message + ": " + ke.Description
	}
	return err.Error()
}

// resultError is the message for a per-resource error in a response, with the broker's
// optional extra message.
func resultError(err error, msg string) string {
	s := kerrMessage(err)
	if msg != "" && !strings.Contains(s, msg) {
		s += " (" + msg + ")"
	}
	return s
}

package broker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/poste-io/poste/internal/config"
)

// ServeCommand is `poste serve`: run a broker until SIGINT or SIGTERM.
func ServeCommand() *cobra.Command {
	var (
		configPath string
		overrides  []string
		logFormat  string
		logLevel   string
		cpuProfile string
		keyFlags   = map[string]*string{}
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Poste broker",
		Long: `Run a Poste broker. With no arguments it listens on 127.0.0.1:9092 (advertised as
localhost:9092) and keeps its data in ./poste-data.

Configuration uses Kafka's server.properties keys. In increasing precedence: built-in
defaults, --config FILE, POSTE_* environment variables (log.dirs -> POSTE_LOG_DIRS),
--override key=value and the --<key> flags below.`,
		Example: `  poste serve
  poste serve --config server.properties
  poste serve --listeners PLAINTEXT://0.0.0.0:9092 --advertised.listeners PLAINTEXT://myhost:9092
  POSTE_LOG_DIRS=/var/lib/poste poste serve --override num.partitions=3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lg, err := newLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			ov := make(map[string]string)
			for _, o := range overrides {
				k, v, ok := strings.Cut(o, "=")
				if !ok {
					return fmt.Errorf("--override %q: want key=value", o)
				}
				ov[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			for k, v := range keyFlags {
				if cmd.Flags().Changed(k) {
					ov[k] = *v
				}
			}
			cfg, unknown, err := config.Load(configPath, os.Environ(), ov)
			if err != nil {
				return err
			}
			for _, k := range unknown {
				lg.Warn("ignoring unknown configuration key", "key", k)
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer func() {
					pprof.StopCPUProfile()
					f.Close()
				}()
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			b, err := Start(cfg, lg)
			if err != nil {
				return err
			}
			<-ctx.Done()
			stop()
			lg.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return b.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "a server.properties file")
	f.StringArrayVar(&overrides, "override", nil, "set any configuration key: key=value (repeatable)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile of the broker to this file, from start to shutdown")
	for _, k := range config.FlagKeys() {
		d, _ := config.LookupBroker(k)
		keyFlags[k] = f.String(k, "", firstSentence(d.Doc))
	}
	return cmd
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i+1]
	}
	return s
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

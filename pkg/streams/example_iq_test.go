package streams_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/poste-io/poste/pkg/streams"
)

// Each instance serves its own stores over HTTP at its application.server and forwards a
// question about a key it does not own to the instance that does: the lookup is the
// library's, the transport is the application's (as in Kafka Streams).
func Example_interactiveQueries() {
	const self = "localhost:7070" // this instance's application.server
	t := streams.NewTopology()
	streams.From(t, "clicks", streams.String(), streams.String()).GroupByKey().Count("counts")
	app, err := streams.New(t, streams.Config{ApplicationID: "clicks", Brokers: []string{"localhost:9092"},
		ApplicationServer: self, DefaultStoreType: streams.Persistent})
	if err != nil {
		panic(err)
	}
	http.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		md, err := streams.MetadataForKey(app, "counts", user)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable) // rebalancing: retry
			return
		}
		if md.Host != self { // another instance owns the key: ask it
			resp, err := http.Get("http://" + md.Host + "/count?user=" + url.QueryEscape(user))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			return
		}
		counts, err := streams.QueryKeyValueStore[string, int64](app, "counts")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		n, _, err := counts.Get(user)
		if errors.Is(err, streams.ErrStoreNotAvailable) { // the task is moving or restoring
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, n)
	})
	go func() { _ = http.ListenAndServe(self, nil) }()
	_ = app.Run(context.Background())
}

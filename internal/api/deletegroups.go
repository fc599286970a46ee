package api

// DeleteGroups (key 42), versions 0–2.
//   v1: no schema change.  v2: flexible.
// Only an empty group is deleted (NON_EMPTY_GROUP otherwise), with its committed offsets;
// tombstones in __consumer_offsets make the deletion durable.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.DeleteGroupsRequest)
	waits := make([]func() error, len(r.Groups))
	for i, g := range r.Groups {
		waits[i] = awaitResult(func(cb func(error)) { h.Groups.Delete(g, cb) })
	}
	return DeferFunc(func() Response {
		resp := kmsg.NewPtrDeleteGroupsResponse()
		for i, g := range r.Groups {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = g, errCode(waits[i]())
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}), nil
}

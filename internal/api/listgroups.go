package api

// ListGroups (key 16), versions 0–5.
//   v1: throttle time.  v2: no schema change.  v3: flexible.
//   v4: a states filter and each group's state (KIP-518).
//   v5: a types filter and each group's type (KIP-848): "classic" or "consumer".
// Lists the groups of the __consumer_offsets partitions this broker leads;
// COORDINATOR_LOAD_IN_PROGRESS while one of them is loading.

import (
	"context"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.ListGroupsRequest)
	resp := kmsg.NewPtrListGroupsResponse()
	ls, err := h.Groups.List()
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	match := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Group < ls[j].Group })
	for _, l := range ls {
		if !match(r.TypesFilter, l.Type) || !match(r.StatesFilter, l.StateName()) {
			continue
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = l.Group, l.ProtocolType, l.StateName(), l.Type
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

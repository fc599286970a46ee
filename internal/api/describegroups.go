package api

// DescribeGroups (key 15), versions 0–5.
//   v1: throttle time.  v2: no schema change.  v3: authorized operations on request.
//   v4: group.instance.id of members (KIP-345).  v5: flexible.
// An unknown group is answered with state Dead and no error, as Kafka does before v6. Member
// metadata and assignments are shown only for a Stable group.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/group"
)

func init() { register(15, 0, 5, handleDescribeGroups) }

// groupOpsAll is READ, DELETE and DESCRIBE: every group operation Kafka defines.
const groupOpsAll = int32(1<<3 | 1<<6 | 1<<8)

func handleDescribeGroups(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.DescribeGroupsRequest)
	waits := make([]func() group.Description, len(r.Groups))
	for i, g := range r.Groups {
		waits[i] = awaitResult(func(cb func(group.Description)) { h.Groups.Describe(g, cb) })
	}
	return DeferFunc(func() Response {
		resp := kmsg.NewPtrDescribeGroupsResponse()
		for i := range r.Groups {
			d := waits[i]()
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode = d.Group, errCode(d.Err)
			g.State, g.ProtocolType, g.Protocol = d.State.String(), d.ProtocolType, d.Protocol
			if r.IncludeAuthorizedOperations {
				g.AuthorizedOperations = groupOpsAll
			}
			for _, m := range d.Members {
				gm := kmsg.NewDescribeGroupsResponseGroupMember()
				gm.MemberID, gm.InstanceID, gm.ClientID, gm.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
				gm.ProtocolMetadata, gm.MemberAssignment = m.Metadata, m.Assignment
				if gm.ProtocolMetadata == nil {
					gm.ProtocolMetadata = []byte{}
				}
				if gm.MemberAssignment == nil {
					gm.MemberAssignment = []byte{}
				}
				g.Members = append(g.Members, gm)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}), nil
}

package rpc

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// gRPC answers a request it cannot decode (bad protobuf, invalid UTF-8 in a
// string field) with Internal, written before any handler or interceptor
// runs. Those bytes came from the client, so Aura answers InvalidArgument: the
// server's codec records the failure in the message instead of failing, and
// the first interceptor to see the message turns it into the error.

// undecodableField is the largest field number protobuf allows; no Aura
// message uses it. It carries the decoder's error text.
const undecodableField protowire.Number = 1<<29 - 1

type tolerantCodec struct{ base encoding.CodecV2 }

// ServerCodec returns the codec option that makes undecodable requests visible
// to the interceptors.
func ServerCodec() grpc.ServerOption {
	return grpc.ForceServerCodecV2(tolerantCodec{base: encoding.GetCodecV2("proto")})
}

func (c tolerantCodec) Name() string { return c.base.Name() }

func (c tolerantCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c tolerantCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if err == nil || !ok {
		return err
	}
	proto.Reset(m)
	marker := protowire.AppendTag(nil, undecodableField, protowire.BytesType)
	m.ProtoReflect().SetUnknown(protowire.AppendString(marker, err.Error()))
	return nil
}

// undecodable returns InvalidArgument for a message the codec could not decode.
func undecodable(v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return nil
	}
	u := m.ProtoReflect().GetUnknown()
	num, typ, n := protowire.ConsumeTag(u)
	if n < 0 || num != undecodableField || typ != protowire.BytesType {
		return nil
	}
	msg, _ := protowire.ConsumeString(u[n:])
	return status.Error(codes.InvalidArgument, fmt.Sprintf("request does not decode: %s", msg))
}

// decodingStream applies the same check to streamed requests, and keeps the
// first one so that an error can be checked for echoes of it.
type decodingStream struct {
	grpc.ServerStream
	first any
}

func (s *decodingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.first == nil {
		s.first = m
	}
	return undecodable(m)
}

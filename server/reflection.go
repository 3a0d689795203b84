package server

import (
	_ "embed"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// reflectionDescriptors is a google.protobuf.FileDescriptorSet of proto/
// with its source info, made by `make generate` (buf build) and checked by
// `make checkgenerate`. The generated Go code keeps no comments, so server
// reflection from it alone would show none.
//
//go:embed reflection.binpb
var reflectionDescriptors []byte

// sourceFiles returns kgate's proto files as built from proto/, comments
// included. Their imports that are not kgate's (the well-known types) come
// from the linked-in registry.
func sourceFiles() (*protoregistry.Files, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(reflectionDescriptors, &set); err != nil {
		return nil, fmt.Errorf("reading the embedded descriptors: %w", err)
	}
	files := new(protoregistry.Files)
	for _, fdp := range set.GetFile() { // buf writes imports before their importers
		fd, err := protodesc.NewFile(fdp, sourceResolver{files})
		if err != nil {
			return nil, fmt.Errorf("embedded descriptor %s: %w", fdp.GetName(), err)
		}
		if err := files.RegisterFile(fd); err != nil {
			return nil, fmt.Errorf("embedded descriptor %s: %w", fdp.GetName(), err)
		}
	}
	return files, nil
}

// sourceResolver finds descriptors in own first, then in the linked-in
// registry.
type sourceResolver struct{ own *protoregistry.Files }

func (r sourceResolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if fd, err := r.own.FindFileByPath(path); err == nil {
		return fd, nil
	}
	return protoregistry.GlobalFiles.FindFileByPath(path)
}

func (r sourceResolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.own.FindDescriptorByName(name); err == nil {
		return d, nil
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(name)
}

// registerReflection registers server reflection (v1 and v1alpha, as
// reflection.Register does) on s, describing kgate's services from the
// embedded descriptors, so that `grpcurl describe kgate.v1.Publisher`
// shows the proto's comments: the status codes and what to do about each.
// Other services (health, reflection itself) are described from the
// linked-in registry.
func registerReflection(s *grpc.Server, log *slog.Logger) {
	files, err := sourceFiles()
	if err != nil {
		log.Error("serving reflection without the proto's comments; this is a bug", "err", err)
		reflection.Register(s)
		return
	}
	opts := reflection.ServerOptions{Services: s, DescriptorResolver: sourceResolver{files}}
	reflectionv1alpha.RegisterServerReflectionServer(s, reflection.NewServer(opts))
	reflectionv1.RegisterServerReflectionServer(s, reflection.NewServerV1(opts))
}

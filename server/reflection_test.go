package server

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

// TestReflectionDescriptorsMatchTheGeneratedCode: the embedded descriptors
// load, keep the proto's comments, and describe exactly the messages and
// services the generated code implements (so reflection never advertises
// a field the gateway does not know). `make checkgenerate` checks the same
// against proto/.
func TestReflectionDescriptorsMatchTheGeneratedCode(t *testing.T) {
	files, err := sourceFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, gen := range []protoreflect.FileDescriptor{kgatev1.File_kgate_v1_publisher_proto, kgatev1.File_kgate_v1_subscriber_proto, kgatev1.File_kgate_v1_admin_proto} {
		fd, err := files.FindFileByPath(gen.Path())
		if err != nil {
			t.Fatalf("%s is not among the embedded descriptors: %v", gen.Path(), err)
		}
		embedded := protodesc.ToFileDescriptorProto(fd)
		if embedded.GetSourceCodeInfo() == nil || len(embedded.GetSourceCodeInfo().GetLocation()) == 0 {
			t.Errorf("%s: the embedded descriptor has no source info", gen.Path())
		}
		embedded.SourceCodeInfo = nil
		want := protodesc.ToFileDescriptorProto(gen)
		// buf's managed mode gives the generated code its file options
		// (go_package, java_package, ...); proto/ itself sets none.
		if embedded.Options != nil {
			t.Errorf("%s: the embedded descriptor has file options %v; proto/ sets none", gen.Path(), embedded.Options)
		}
		want.Options = nil
		if !proto.Equal(embedded, want) {
			t.Errorf("%s: the embedded descriptor differs from the generated code's: run make generate\nembedded: %v\ngenerated: %v", gen.Path(), embedded, want)
		}
	}
	if n := files.NumFiles(); n != 3 {
		t.Errorf("the embedded descriptors hold %d files, want kgate's 3", n)
	}
	svc, err := sourceResolver{files}.FindDescriptorByName("kgate.v1.Publisher")
	if err != nil {
		t.Fatal(err)
	}
	loc := svc.(protoreflect.ServiceDescriptor).ParentFile().SourceLocations().ByDescriptor(svc.(protoreflect.ServiceDescriptor).Methods().ByName("Publish"))
	if loc.LeadingComments == "" {
		t.Errorf("Publisher.Publish has no leading comment in the embedded descriptors")
	}
	// Other services resolve from the linked-in registry.
	if _, err := (sourceResolver{files}).FindDescriptorByName("grpc.health.v1.Health"); err != nil {
		t.Errorf("grpc.health.v1.Health: %v", err)
	}
}

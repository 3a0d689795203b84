"""Decodes the rich error details kgate sends with a failed call.

The grpc-status-details-bin trailer is a google.rpc.Status whose details
are google.protobuf.Any: google.rpc.ErrorInfo (reason), google.rpc.RetryInfo
(on RESOURCE_EXHAUSTED) and, for a partly written Publish,
kgate.v1.PublishFailure. Debian ships neither grpcio-status nor
googleapis-common-protos, so google.rpc comes from ../googleapis, compiled
by gen.sh with the kgate stubs.
"""

from dataclasses import dataclass
from typing import Optional

import grpc
from google.rpc import error_details_pb2, status_pb2
from kgate.v1 import publisher_pb2


@dataclass
class Details:
    error_info: Optional[error_details_pb2.ErrorInfo] = None
    retry_delay_s: Optional[float] = None
    publish_failure: Optional[publisher_pb2.PublishFailure] = None

    @property
    def reason(self) -> str:
        return self.error_info.reason if self.error_info else ""


def status_details(err: grpc.RpcError) -> Details:
    out = Details()
    trailers = err.trailing_metadata() or ()
    raw = next((v for k, v in trailers if k == "grpc-status-details-bin"), None)
    if raw is None:
        return out
    st = status_pb2.Status.FromString(raw)
    for any_ in st.details:
        if any_.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            out.error_info = error_details_pb2.ErrorInfo()
            any_.Unpack(out.error_info)
        elif any_.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            ri = error_details_pb2.RetryInfo()
            any_.Unpack(ri)
            out.retry_delay_s = ri.retry_delay.ToTimedelta().total_seconds()
        elif any_.Is(publisher_pb2.PublishFailure.DESCRIPTOR):
            out.publish_failure = publisher_pb2.PublishFailure()
            any_.Unpack(out.publish_failure)
    return out

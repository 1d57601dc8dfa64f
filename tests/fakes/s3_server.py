"""A real S3-protocol server on loopback for tests: moto's threaded server (`moto[server]` from PyPI).

Clients reach it exactly as they would reach MinIO or AWS: through boto3/s3fs with
`AWS_ENDPOINT_URL` and credentials from the environment, over HTTP on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def bucket_with(self, bucket: str, files: dict[str, object]) -> None:
        """Create `bucket` and upload each local file under its key ({key: path})."""
        client = self.client()
        client.create_bucket(Bucket=bucket)
        for key, path in files.items():
            client.upload_file(str(path), bucket, key)


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """Start moto's S3 server on 127.0.0.1 (a free port) and stop it when the block ends."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()

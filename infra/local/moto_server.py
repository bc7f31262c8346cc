#!/usr/bin/env python3
"""moto in server mode, made atomic per request.

moto's in-memory backends evaluate a condition and then write in plain Python, so
two threads of the threaded werkzeug server can both win one conditional write, and
a cancelled TransactWriteItems restores a table copy over writes made meanwhile.
Real DynamoDB and SQS are atomic per request; this launcher serialises each DynamoDB
and each SQS request behind one lock per service to match. SQS long polls release
the lock while they wait, so a long poll never stalls other clients.
"""
import argparse
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

_current = threading.local()


def service_of(environ):
    """The AWS service a request is for: JSON-protocol target, else SigV4 scope."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDB"):
        return "dynamodb"
    if target.startswith("AmazonSQS"):
        return "sqs"
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            return scope[3].lower()
    return None


class AtomicRequests:
    """WSGI middleware: one request at a time per locked service."""

    def __init__(self, app, services):
        self.app = app
        self.locks = {name: threading.Lock() for name in services}

    def __call__(self, environ, start_response):
        lock = self.locks.get(service_of(environ))
        if lock is None:
            return self.app(environ, start_response)
        with lock:
            _current.lock = lock
            try:
                result = self.app(environ, start_response)
                try:
                    # Drain the response inside the lock: the backend work happens here.
                    body = b"".join(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            finally:
                _current.lock = None
        return [body]


def release_lock_during_long_polls():
    from moto.sqs.models import Queue

    original = Queue.wait_for_messages

    def wait_for_messages(self, timeout):
        lock = getattr(_current, "lock", None)
        if lock is None:
            return original(self, timeout)
        lock.release()
        try:
            return original(self, timeout)
        finally:
            lock.acquire()

    Queue.wait_for_messages = wait_for_messages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args()
    release_lock_during_long_polls()
    app = AtomicRequests(DomainDispatcherApplication(create_backend_app), ["dynamodb", "sqs"])
    run_simple(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
        use_reloader=False,
    )


if __name__ == "__main__":
    main()

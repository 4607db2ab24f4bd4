"""Command line: `python -m iamport_sandbox --host 127.0.0.1 --port 8089 [--data PATH]`.

Also `--imp-key K --imp-secret S`, `--merchant-code C`, `--notice-url URL` and `--quiet`.
"""

import argparse
import signal

from iamport_sandbox.server import DEFAULT_IMP_KEY, DEFAULT_IMP_SECRET, DEFAULT_MERCHANT_CODE, SandboxServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m iamport_sandbox", description="Offline Iamport V1 sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--data", default=None, help="SQLite file; state survives restarts (default: in memory)")
    parser.add_argument("--imp-key", default=DEFAULT_IMP_KEY)
    parser.add_argument("--imp-secret", default=DEFAULT_IMP_SECRET)
    parser.add_argument("--merchant-code", default=DEFAULT_MERCHANT_CODE)
    parser.add_argument("--notice-url", default=None, help="console webhook URL (when a payment has no notice_url)")
    parser.add_argument("--quiet", action="store_true", help="do not log one line per request")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # docker stop / terminate(): shut down like Ctrl-C
    SandboxServer(
        host=args.host,
        port=args.port,
        data_path=args.data,
        imp_key=args.imp_key,
        imp_secret=args.imp_secret,
        merchant_code=args.merchant_code,
        default_notice_url=args.notice_url,
        log_requests=not args.quiet,
    ).serve_forever()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()

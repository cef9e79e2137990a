"""
TLS for loopback tests: a self-signed certificate made by the test, and
the server and client options that use it.
"""

from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import ssl

__all__ = ["selfSigned", "tlsOptions"]


def selfSigned() -> tuple[Any, Any]:
    """
    A fresh self-signed certificate for C{localhost} and its key, as
    C{cryptography} objects.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def tlsOptions() -> tuple[Any, Any]:
    """
    C{(server options, client options)} for one fresh self-signed
    certificate: the server presents it, the client trusts only it.
    """
    certificate, key = selfSigned()
    server = ssl.CertificateOptions(privateKey=key, certificate=certificate)
    client = ssl.optionsForClientTLS(
        "localhost",
        trustRoot=ssl.Certificate.loadPEM(
            certificate.public_bytes(serialization.Encoding.PEM)
        ),
    )
    return server, client

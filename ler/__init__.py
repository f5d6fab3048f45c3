"""The LER platform kit: the ground floor every service stands on.

Envelope, Avro codec, Kafka and Faust wiring, settings, stores, the embedded broker launcher and the
``ler`` command line. Nothing in this package imports a service.
"""

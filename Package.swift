// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "durable-streams",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "durable-streams", targets: ["durable-streams"]),
        .library(name: "DurableStreams", targets: ["DurableStreams"]),
        .library(name: "StreamStore", targets: ["StreamStore"]),
        .library(name: "OriginServer", targets: ["OriginServer"]),
        .library(name: "EdgeNode", targets: ["EdgeNode"]),
        .library(name: "LoadTest", targets: ["LoadTest"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.90.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        // Already required by jwt-kit; named here for the test CA the TLS tests make.
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.0.0"),
    ],
    targets: [
        // Protocol vocabulary: offsets, cursors, ETags, JSON framing, SSE encoding, request parsing. No I/O.
        .target(
            name: "DurableStreams",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // The system LMDB library (liblmdb-dev), for the file-backed store.
        .systemLibrary(
            name: "CLMDB",
            path: "Sources/CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        // Storage: the StreamStore protocol, the append rules every store shares, the in-memory
        // store, and the durable file store (segment files + LMDB, I/O on a thread pool).
        .target(
            name: "StreamStore",
            dependencies: [
                "DurableStreams",
                "CLMDB",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // What both servers share: configuration files, the request state machine, the listening
        // side (TLS with swift-nio-ssl, HTTP/2 with swift-nio-http2 negotiated by ALPN).
        .target(
            name: "ServerSupport",
            dependencies: [
                "DurableStreams",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        // Who may do what: API keys, JWT bearer tokens (jwt-kit), forward auth (an HTTP endpoint
        // asked over NIO's client pipeline), the access rule of each request, and a responder
        // that puts them in front of either server.
        .target(
            name: "StreamAuth",
            dependencies: [
                "DurableStreams",
                "ServerSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Subscriptions (§6–7): configurations, glob links, the wake state machine, Ed25519
        // webhook signing (swift-crypto), callback tokens, SSRF-checked webhook delivery over
        // NIO's HTTP client pipeline, and the registry that runs them beside a store.
        .target(
            name: "Subscriptions",
            dependencies: [
                "DurableStreams",
                "StreamStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The origin's HTTP/1.1 server on SwiftNIO.
        .target(
            name: "OriginServer",
            dependencies: [
                "DurableStreams",
                "StreamStore",
                "ServerSupport",
                "StreamAuth",
                "Subscriptions",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The edge: a protocol-aware caching and fan-out node in front of an origin or another edge.
        .target(
            name: "EdgeNode",
            dependencies: [
                "DurableStreams",
                "ServerSupport",
                "StreamAuth",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The load tester: scenarios, SwiftNIO reader and writer clients, delivery ledgers, reports.
        .target(
            name: "LoadTest",
            dependencies: [
                "DurableStreams",
                "ServerSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .executableTarget(
            name: "durable-streams",
            dependencies: [
                "OriginServer",
                "EdgeNode",
                "LoadTest",
                "ServerSupport",
                "StreamStore",
                "Subscriptions",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Fuzz targets: every parser a client (or an operator's config file) reaches, one function
        // each, with the invariants they must keep. Shared by the fuzzer and the corpus replay tests.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "DurableStreams",
                "ServerSupport",
                "OriginServer",
                "EdgeNode",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The libFuzzer entry point when built with `-sanitize=fuzzer -D FUZZING` (`make fuzz`);
        // in a normal build, a small tool that replays files through a target.
        .executableTarget(
            name: "durable-streams-fuzz",
            dependencies: ["FuzzTargets"],
            path: "Sources/DurableStreamsFuzz"
        ),
        // Shared by the test targets: a small HTTP/1.1 client over real sockets.
        .target(
            name: "TestSupport",
            dependencies: [
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "DurableStreamsTests",
            dependencies: ["DurableStreams", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "ServerSupportTests",
            dependencies: [
                "ServerSupport", "TestSupport",
                "DurableStreams",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "StreamAuthTests",
            dependencies: [
                "StreamAuth", "ServerSupport", "DurableStreams", "TestSupport",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "FuzzTargetsTests",
            dependencies: ["FuzzTargets"]
        ),
        .testTarget(
            name: "StreamStoreTests",
            dependencies: [
                "StreamStore",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "EdgeNodeTests",
            dependencies: [
                "EdgeNode", "OriginServer", "StreamStore", "TestSupport", "StreamAuth",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "LoadTestTests",
            dependencies: [
                "LoadTest", "OriginServer", "EdgeNode", "ServerSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SubscriptionsTests",
            dependencies: [
                "Subscriptions", "StreamStore", "DurableStreams", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "OriginServerTests",
            dependencies: [
                "OriginServer", "ServerSupport", "TestSupport", "EdgeNode", "StreamAuth", "Subscriptions",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
    ]
)

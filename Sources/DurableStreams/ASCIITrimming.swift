extension Substring {
    /// The text without leading and trailing `characters` (ASCII bytes). Header parsing on the
    /// request path uses this instead of Foundation's `trimmingCharacters`, which bridges through
    /// NSString and showed up in the servers' profiles.
    public func trimmingASCII(_ characters: StaticString) -> Substring {
        characters.withUTF8Buffer { set in
            guard let first = utf8.firstIndex(where: { !set.contains($0) }) else { return self[endIndex...] }
            let last = utf8.lastIndex(where: { !set.contains($0) })!
            return self[first...last]
        }
    }
}

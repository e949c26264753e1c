import Foundation
import Subscriptions
import Testing

@Suite("Subscriptions: error bodies")
struct SubscriptionErrorTests {
    @Test func theBodyNamesTheCodeAndItsDetails() throws {
        let error = SubscriptionError(status: 409, code: "ALREADY_CLAIMED", "claimed", details: ["current_holder": .string("w2"), "generation": .int(7)])
        let object = try JSONSerialization.jsonObject(with: Data(error.body)) as? [String: Any]
        let inner = try #require(object?["error"] as? [String: Any])
        #expect(inner["code"] as? String == "ALREADY_CLAIMED")
        #expect(inner["current_holder"] as? String == "w2")
        #expect(inner["generation"] as? Int == 7)
    }
}

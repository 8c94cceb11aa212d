//! The common opening of a gateway test: a scripted mock upstream, the real binary, and custom keys on the mock,
//! so each test states only which keys serve which models.

use serde_json::Value;

use super::client::add_custom_key;
use super::gateway::Gateway;
use super::mock::Mock;

/// A mock upstream and a default gateway with one custom key on the mock per `(key, models)` pair, added in order.
pub async fn gateway_on_mock(keys: &[(&str, Value)]) -> (Mock, Gateway) {
    let mock = Mock::start();
    let gw = Gateway::start(&[]);
    for (key, models) in keys {
        add_custom_key(&gw, key, &mock.base_url(), models.clone()).await;
    }
    (mock, gw)
}

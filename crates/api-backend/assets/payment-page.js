// The paymentsUrl page HighLevel shows in an iframe. It talks to its parent only through postMessage, accepts
// `payment_initiate_props` only from the allowed parent origins and only with a publishable key of the location,
// and never holds a secret: the card goes straight to this service's page API.
(function () {
  "use strict";
  var allowed = (document.body.getAttribute("data-parent-origins") || "").split(" ").filter(Boolean);
  var props = null;
  var parentOrigin = null;
  var $ = function (id) { return document.getElementById(id); };

  function tell(message, origin) {
    window.parent.postMessage(JSON.stringify(message), origin || parentOrigin || "*");
  }

  function show(text, isError) {
    $("status").textContent = isError ? "" : text;
    $("error").textContent = isError ? text : "";
  }

  function parse(data) {
    if (typeof data === "string") {
      try { return JSON.parse(data); } catch (e) { return null; }
    }
    return data && typeof data === "object" ? data : null;
  }

  window.addEventListener("message", function (event) {
    if (allowed.indexOf(event.origin) < 0) { return; } // a foreign window: ignored
    var data = parse(event.data);
    if (!data || data.type !== "payment_initiate_props" || props) { return; }
    fetch("/payments/page/check", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ publishableKey: String(data.publishableKey || ""), locationId: String(data.locationId || "") })
    }).then(function (res) {
      if (!res.ok) { return null; } // another location's key, or none: ignored
      return res.json();
    }).then(function (info) {
      if (!info) { return; }
      props = data;
      parentOrigin = event.origin;
      $("amount").textContent = Number(data.amount).toFixed(2) + " " + String(data.currency || "").toUpperCase();
      if (info.gateway === "paytr") { paytr(); return; }
      $("card-form").hidden = false;
      show("Enter your card.", false);
    });
  });

  function poll(chargeId) {
    var url = "/payments/page/charges/" + encodeURIComponent(chargeId) +
      "?publishableKey=" + encodeURIComponent(props.publishableKey) + "&locationId=" + encodeURIComponent(props.locationId);
    fetch(url).then(function (r) { return r.json(); }).then(finish, failed);
  }

  function finish(answer) {
    if (answer.status === "succeeded") {
      show("Paid.", false);
      tell({ type: "custom_element_success_response", chargeId: answer.chargeId });
    } else if (answer.status === "pending") {
      show("Waiting for your bank's confirmation…", false);
      setTimeout(function () { poll(answer.chargeId); }, 500);
    } else {
      var description = answer.message || answer.detail || "The payment failed.";
      show(description, true);
      $("pay").disabled = false;
      tell({ type: "custom_element_error_response", error: { description: description } });
    }
  }

  // PayTR takes the card on its own page: open it here and wait for PayTR's word (its callback).
  function paytr() {
    show("Opening PayTR…", false);
    fetch("/payments/page/paytr", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        publishableKey: props.publishableKey,
        locationId: props.locationId,
        transactionId: String(props.transactionId || props.orderId || ""),
        orderId: props.orderId ? String(props.orderId) : null,
        amount: Number(props.amount),
        currency: String(props.currency || ""),
        email: props.contact && props.contact.email ? String(props.contact.email) : "customer@example.invalid",
        productName: props.productDetails && props.productDetails.name ? String(props.productDetails.name) : null
      })
    }).then(function (r) { return r.json(); }).then(function (answer) {
      if (!answer.checkoutUrl) { finish(answer); return; }
      var frame = document.createElement("iframe");
      frame.src = answer.checkoutUrl;
      frame.id = "paytr";
      frame.width = "100%";
      frame.height = "600";
      $("gateway").appendChild(frame);
      show("Complete the payment with PayTR.", false);
      poll(answer.chargeId);
    }, failed);
  }

  function failed() {
    show("The payment service could not be reached.", true);
    $("pay").disabled = false;
  }

  $("card-form").addEventListener("submit", function (e) {
    e.preventDefault();
    if (!props) { return; }
    $("pay").disabled = true;
    show("Paying…", false);
    var contact = props.contact && props.contact.id ? String(props.contact.id) : null;
    fetch("/payments/page/charge", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        publishableKey: props.publishableKey,
        locationId: props.locationId,
        transactionId: String(props.transactionId || props.orderId || ""),
        orderId: props.orderId ? String(props.orderId) : null,
        amount: Number(props.amount),
        currency: String(props.currency || ""),
        contactId: contact,
        saveCard: Boolean(contact) && $("save").checked,
        card: {
          number: $("number").value,
          expMonth: parseInt($("exp-month").value, 10) || 0,
          expYear: parseInt($("exp-year").value, 10) || 0,
          cvc: $("cvc").value
        }
      })
    }).then(function (r) { return r.json(); }).then(finish, failed);
  });

  $("cancel").addEventListener("click", function () {
    tell({ type: "custom_element_close_response" });
  });

  // Card on file is not advertised: this page does not handle `setup_initiate_props`.
  tell({ type: "custom_provider_ready", loaded: true }, "*");
})();

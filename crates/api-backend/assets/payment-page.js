// The paymentsUrl page HighLevel shows in an iframe, on its own hosts and on agencies' custom domains. It talks
// to its parent window only through postMessage and never holds a secret: the card goes straight to this
// service's page API, which checks that the publishable key is the location's and charges HighLevel's own
// amount for the transaction. `custom_provider_ready` carries nothing and may go to any parent; every message
// after the props goes only to the origin that sent them.
(function () {
  "use strict";
  // Empty: any parent may send props (the default). Set from PAYMENT_PARENT_ORIGINS to restrict.
  var allowed = (document.body.getAttribute("data-parent-origins") || "").split(" ").filter(Boolean);
  // Whether this location's gateway keeps cards (the page was registered with `?locationId=`).
  var cardOnFile = document.body.getAttribute("data-card-on-file") === "true";
  var READY_EVERY_MS = 500;
  var GIVE_UP_AFTER_MS = 15000;
  var props = null;
  var gateway = null;
  var parentOrigin = null;
  var checking = false;
  var $ = function (id) { return document.getElementById(id); };

  function tell(message) {
    if (!parentOrigin) { return; } // nothing but `ready` goes out before the parent is known
    window.parent.postMessage(JSON.stringify(message), parentOrigin);
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

  // HighLevel's parent sometimes misses the first `ready`: say it again until the props arrive.
  var started = Date.now();
  function ready() {
    if (props || checking) { return; }
    var hello = { type: "custom_provider_ready", loaded: true };
    if (cardOnFile) { hello.addCardOnFileSupported = true; }
    window.parent.postMessage(JSON.stringify(hello), "*");
    if (Date.now() - started >= GIVE_UP_AFTER_MS) {
      show("The payment details did not arrive from the checkout page. Check that this page was opened by " +
        "HighLevel's checkout and that this payment provider is connected for the location; then reload.", true);
    }
    setTimeout(ready, READY_EVERY_MS);
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) { return; } // only the window that framed us
    if (allowed.length > 0 && allowed.indexOf(event.origin) < 0) { return; }
    var data = parse(event.data);
    if (!data || props || checking) { return; }
    if (data.type !== "payment_initiate_props" && !(data.type === "setup_initiate_props" && cardOnFile)) { return; }
    checking = true;
    fetch("/payments/page/check", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ publishableKey: String(data.publishableKey || ""), locationId: String(data.locationId || "") })
    }).then(function (res) {
      return res.json().then(function (body) { return { ok: res.ok, body: body }; });
    }).then(function (answer) {
      if (!answer.ok) {
        // Another location's key, or a mode the gateway does not serve: say so, and keep listening.
        checking = false;
        show(answer.body && answer.body.detail ? answer.body.detail : "This payment provider is not set up for this location.", true);
        return;
      }
      props = data;
      gateway = answer.body.gateway;
      parentOrigin = event.origin;
      if (data.type === "setup_initiate_props") {
        // Card on file: the card is saved, not charged (PayTR: a verification payment of one unit).
        $("amount").textContent = gateway === "paytr" ?
          "1.00 " + String(data.currency || "TRY").toUpperCase() + " (verification payment; the card is saved)" :
          "nothing now (the card is saved)";
        $("owner-row").hidden = gateway !== "paytr";
        $("save-row").hidden = true;
        $("pay").textContent = "Save card";
        $("card-form").hidden = false;
        show("Enter the card to keep on file.", false);
        return;
      }
      $("amount").textContent = String(data.amount) + " " + String(data.currency || "").toUpperCase();
      if (data.mode === "subscription") {
        if (!subscriptionForm(answer.body)) { return; }
        // PayTR (Direct API): the card goes from this browser straight to PayTR; PayTR wants the owner's name.
        $("owner-row").hidden = gateway !== "paytr";
        $("card-form").hidden = false;
        show("Enter your card.", false);
        return;
      }
      if (answer.body.gateway === "paytr") { paytr(); return; }
      $("card-form").hidden = false;
      show("Enter your card.", false);
    }, function () {
      checking = false;
      failed();
    });
  });

  function transactionId() { return String(props.transactionId || props.orderId || ""); }
  function orderId() { return props.orderId ? String(props.orderId) : null; }

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
        transactionId: transactionId(),
        orderId: orderId(),
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

  function card() {
    return {
      number: $("number").value,
      expMonth: parseInt($("exp-month").value, 10) || 0,
      expYear: parseInt($("exp-year").value, 10) || 0,
      cvc: $("cvc").value
    };
  }

  function saveCard() {
    fetch("/payments/page/setup", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        publishableKey: props.publishableKey,
        locationId: props.locationId,
        contactId: props.contact && props.contact.id ? String(props.contact.id) : "",
        card: card()
      })
    }).then(function (r) { return r.json(); }).then(function (answer) {
      if (answer.paymentMethodId) {
        show("Card saved.", false);
        tell({ type: "custom_element_success_response" }); // no chargeId after a setup
      } else {
        finish({ status: "failed", detail: answer.detail });
      }
    }, failed);
  }

  // `mode: "subscription"`: the card is kept on file for the renewals and the first period charged, on
  // HighLevel's terms (its transaction and its recurring price), under HighLevel's `subscriptionId`. Only where
  // the location's gateway can keep a card; elsewhere the page says so and tells the parent.
  function subscriptionForm(check) {
    if (!check.subscriptions) {
      finish({ status: "failed", message: "Subscriptions are not available with this location's payment gateway (" +
        String(check.gateway) + "): it keeps no card to renew from. Buy this product as a one-time payment, or " +
        "ask the merchant." });
      return false;
    }
    $("save-row").hidden = true;
    $("pay").textContent = "Subscribe";
    $("amount").textContent += " now; the card is kept for the renewals";
    return true;
  }

  function subscribe() {
    var details = props.productDetails || {};
    fetch("/payments/page/subscribe", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        publishableKey: props.publishableKey,
        locationId: props.locationId,
        transactionId: transactionId(),
        orderId: orderId(),
        subscriptionId: String(props.subscriptionId || ""),
        productId: String(details.productId || ""),
        priceId: String(details.priceId || ""),
        amount: Number(props.amount),
        currency: String(props.currency || ""),
        contactId: props.contact && props.contact.id ? String(props.contact.id) : null,
        card: card()
      })
    }).then(function (r) { return r.json(); }).then(function (answer) {
      if (answer.chargeId) { finish(answer); return; } // the first period: paid, declined, or waiting on the bank
      if (answer.subscriptionStatus === "trialing" || answer.subscriptionStatus === "scheduled") {
        show("Subscribed; the first charge follows the trial.", false);
        tell({ type: "custom_element_success_response" }); // nothing charged yet
        return;
      }
      finish({ status: "failed", message: answer.message || answer.detail });
    }, failed);
  }

  // Card on file with PayTR: our server signs the Direct API fields (a verification payment with store_card=1);
  // the card goes from this browser straight to PayTR in a form posted into a frame of its own (PayTR's 3-D
  // step shows there), never to our server. PayTR's notification settles the payment: poll it.
  function paytrSaveCard() {
    fetch("/payments/page/paytr/setup", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        publishableKey: props.publishableKey,
        locationId: props.locationId,
        contactId: props.contact && props.contact.id ? String(props.contact.id) : "",
        currency: String(props.currency || "TRY")
      })
    }).then(function (r) { return r.json(); }).then(function (answer) {
      if (!answer.action || !answer.fields) { finish({ status: "failed", detail: answer.detail }); return; }
      postCardToPaytr(answer);
      show("Confirm the card with PayTR.", false);
      var began = Date.now();
      pollSetup(answer.chargeId, began, began + (Number(answer.pollForMs) || SETUP_WAITS_MS));
    }, failed);
  }

  // Posts the signed fields and the card from this browser straight to PayTR, into a frame of its own (PayTR's
  // 3-D step shows there).
  function postCardToPaytr(answer) {
    var frame = document.createElement("iframe");
    frame.name = "paytr-card";
    frame.id = "paytr";
    frame.width = "100%";
    frame.height = "600";
    $("gateway").appendChild(frame);
    var form = document.createElement("form");
    form.method = "POST";
    form.action = answer.action;
    form.target = "paytr-card";
    var year = $("exp-year").value.replace(/\D/g, "");
    var card = {
      cc_owner: $("owner").value,
      card_number: $("number").value.replace(/\D/g, ""),
      expiry_month: $("exp-month").value.replace(/\D/g, ""),
      expiry_year: year.slice(-2),
      cvv: $("cvc").value
    };
    var all = Object.assign({}, answer.fields, card);
    Object.keys(all).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = String(all[name]);
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
    form.remove();
    $("card-form").hidden = true;
  }

  // `mode: "subscription"` with PayTR: the first period is a Direct API payment of HighLevel's amount that
  // stores the card (our server signs it after checking HighLevel's records); PayTR's notification creates the
  // subscription. Poll the checkout as a card setup is polled.
  function paytrSubscribe() {
    var details = props.productDetails || {};
    fetch("/payments/page/paytr/subscribe", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        publishableKey: props.publishableKey,
        locationId: props.locationId,
        transactionId: transactionId(),
        orderId: orderId(),
        subscriptionId: String(props.subscriptionId || ""),
        productId: String(details.productId || ""),
        priceId: String(details.priceId || ""),
        amount: Number(props.amount),
        currency: String(props.currency || ""),
        contactId: props.contact && props.contact.id ? String(props.contact.id) : null
      })
    }).then(function (r) { return r.json(); }).then(function (answer) {
      if (answer.subscriptionId && !answer.action) { finish(answer); return; } // a repeat: it stands already
      if (!answer.action || !answer.fields) { finish({ status: "failed", detail: answer.detail }); return; }
      postCardToPaytr(answer);
      show("Confirm the payment with PayTR.", false);
      var began = Date.now();
      pollSubscription(answer.chargeId, began, began + (Number(answer.pollForMs) || SETUP_WAITS_MS));
    }, failed);
  }

  function pollSubscription(chargeId, began, until) {
    if (Date.now() >= until) {
      setupEnded("PayTR did not confirm the payment in time. Check that it was confirmed in PayTR's window " +
        "(your bank's 3-D Secure page or SMS code), then try again.");
      return;
    }
    var url = "/payments/page/paytr/subscriptions/" + encodeURIComponent(chargeId) +
      "?publishableKey=" + encodeURIComponent(props.publishableKey) + "&locationId=" + encodeURIComponent(props.locationId);
    fetch(url).then(function (r) { return r.json(); }).then(function (answer) {
      if (answer.status === "pending") {
        var every = Date.now() - began < 60000 ? 500 : 3000;
        setTimeout(function () { pollSubscription(chargeId, began, until); }, every);
        return;
      }
      if (answer.status === "succeeded") {
        show("Subscribed.", false);
        tell({ type: "custom_element_success_response", chargeId: answer.chargeId });
        return;
      }
      setupEnded(answer.message || answer.detail || "PayTR did not take the payment; no subscription was made.");
    }, failed);
  }

  // PayTR's checkout closes after its timeout; the server then marks the setup failed. The page waits no
  // longer than the server said (or SETUP_WAITS_MS), polling every 0.5 s for the first minute, then every 3 s.
  var SETUP_WAITS_MS = 32 * 60 * 1000;
  var SETUP_ADVICE = " Check that the card was confirmed in PayTR's window (your bank's 3-D Secure page or SMS " +
    "code), then try again. No card was saved.";
  function setupEnded(description) {
    $("card-form").hidden = false;
    $("pay").disabled = false;
    show(description, true);
    tell({ type: "custom_element_error_response", error: { description: description } });
  }

  function pollSetup(chargeId, began, until) {
    if (Date.now() >= until) {
      setupEnded("PayTR did not confirm the card in time." + SETUP_ADVICE);
      return;
    }
    var url = "/payments/page/charges/" + encodeURIComponent(chargeId) +
      "?publishableKey=" + encodeURIComponent(props.publishableKey) + "&locationId=" + encodeURIComponent(props.locationId);
    fetch(url).then(function (r) { return r.json(); }).then(function (answer) {
      if (answer.status === "pending") {
        var every = Date.now() - began < 60000 ? 500 : 3000;
        setTimeout(function () { pollSetup(chargeId, began, until); }, every);
        return;
      }
      if (answer.status === "succeeded") {
        show("Card saved.", false);
        tell({ type: "custom_element_success_response" }); // no chargeId after a setup
        return;
      }
      setupEnded((answer.message || answer.detail || "PayTR did not save the card.") + SETUP_ADVICE);
    }, failed);
  }

  $("card-form").addEventListener("submit", function (e) {
    e.preventDefault();
    if (!props) { return; }
    $("pay").disabled = true;
    if (props.type === "setup_initiate_props") {
      show("Saving…", false);
      if (gateway === "paytr") { paytrSaveCard(); } else { saveCard(); }
      return;
    }
    if (props.mode === "subscription") {
      show("Subscribing…", false);
      if (gateway === "paytr") { paytrSubscribe(); } else { subscribe(); }
      return;
    }
    show("Paying…", false);
    var contact = props.contact && props.contact.id ? String(props.contact.id) : null;
    fetch("/payments/page/charge", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        publishableKey: props.publishableKey,
        locationId: props.locationId,
        transactionId: transactionId(),
        orderId: orderId(),
        amount: Number(props.amount),
        currency: String(props.currency || ""),
        contactId: contact,
        saveCard: Boolean(contact) && $("save").checked,
        card: card()
      })
    }).then(function (r) { return r.json(); }).then(finish, failed);
  });

  $("cancel").addEventListener("click", function () {
    tell({ type: "custom_element_close_response" });
  });

  // PayTR's result pages (merchant_ok_url / merchant_fail_url) open this page inside PayTR's frame: it only says
  // so; the page around it learns the outcome from PayTR's callback (it polls the charge).
  var result = new URLSearchParams(window.location.search).get("result");
  if (result === "ok" || result === "fail") {
    show(result === "ok" ? "Payment received; finishing…" : "The payment did not go through.", result !== "ok");
    return;
  }

  ready();
})();

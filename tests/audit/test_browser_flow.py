"""The flow chart in a real browser (system Chromium through Playwright): drawn on the admin index and the
tenant page, legible at 1366 px, and visible in a screenshot (its pixels are counted by colour)."""

import base64
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import Event
from tenants.models import Tenant

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # kept by CI, ignored by git

COUNT_COLOURS = """async (png) => {
  const img = new Image();
  img.src = "data:image/png;base64," + png;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  const near = (i, r, g, b) => Math.abs(data[i] - r) < 24 && Math.abs(data[i + 1] - g) < 24 && Math.abs(data[i + 2] - b) < 24;
  const found = {green: 0, red: 0, amber: 0, width: img.width};
  for (let i = 0; i < data.length; i += 4) {
    if (near(i, 0x2e, 0x7d, 0x32)) found.green++;
    else if (near(i, 0xc6, 0x28, 0x28)) found.red++;
    else if (near(i, 0xf9, 0xa8, 0x25)) found.amber++;
  }
  return found;
}"""


def spread(tenant, status, hours, per_hour):
    now = timezone.now()
    for hour in hours:
        for _ in range(per_hour):
            event = Event.objects.create(
                tenant=tenant, name="invoice.create", object_id=str(hour), status=status
            )
            Event.objects.filter(pk=event.pk).update(received_at=now - timedelta(hours=hour))


def log_in(page, live_server):
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass-123")
    page.click("input[type=submit]")


def colours_in(page, locator, name):
    SCREENSHOTS.mkdir(exist_ok=True)
    png = locator.screenshot(path=str(SCREENSHOTS / name))
    return page.evaluate(COUNT_COLOURS, base64.b64encode(png).decode())


@pytest.mark.django_db(transaction=True)
def test_the_flow_chart_reads_at_a_glance_on_the_index_and_the_tenant_page(
    live_server, page, django_user_model
):
    django_user_model.objects.create_user(
        "operator", password="operator-pass-123", is_staff=True, is_superuser=True
    )
    acme = Tenant.objects.create(name="Acme Corp", slug="acme")
    spread(acme, "succeeded", range(1, 150, 3), 4)
    spread(acme, "failed", range(20, 30), 2)
    spread(acme, "waiting", range(2, 4), 3)
    Tenant.objects.create(name="Quiet Ltd", slug="quiet")
    page.set_viewport_size({"width": 1366, "height": 900})

    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/")
    chart = page.locator('figure.flow-chart[data-tenant="acme"]')
    assert chart.is_visible()
    assert "succeeded 200" in chart.inner_text() and "failed 20" in chart.inner_text()
    box = chart.locator("svg").bounding_box()
    assert box["width"] >= 500 and box["height"] >= 120  # big enough to read
    seen = colours_in(page, chart, "flow-index.png")
    assert seen["green"] > 500 and seen["red"] > 50 and seen["amber"] > 10, seen
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366  # no sideways scrolling
    quiet = page.locator('figure.flow-chart[data-tenant="quiet"]')
    assert "No events in the last 7 days" in quiet.inner_text()
    bar = chart.locator("g.flow-bar").first
    assert "UTC:" in bar.locator("title").text_content()  # a tooltip names the hour and its counts

    page.goto(f"{live_server.url}/admin/tenants/tenant/{acme.pk}/change/")
    tenant_chart = page.locator("#flow figure.flow-chart")
    assert tenant_chart.is_visible()
    seen = colours_in(page, tenant_chart, "flow-tenant.png")
    assert seen["green"] > 500 and seen["red"] > 50, seen
    page.screenshot(path=str(SCREENSHOTS / "flow-tenant-page.png"), full_page=True)

using MLNet.Align.Cli.Commands;
using MLNet.Align.Search;
using PuppeteerSharp;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Search;

/// <summary>The page `mlnet-align serve` answers, in a real browser: Debian's chromium (installed by .ci/run; nothing
/// downloads a browser) loads it over a real index of the fixture photos, a typed query shows the expected thumbnails
/// first, and an uploaded image comes back ranked first.</summary>
[Collection("search")]
public class SearchPageBrowserTests(SearchFixture fx, ITestOutputHelper output) : IClassFixture<SearchFixture>
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task The_page_searches_by_text_and_by_uploaded_image()
    {
        Assert.True(File.Exists(Chromium), $"This test drives Debian's chromium at {Chromium}: install it with 'apt-get install -y chromium' (.ci/run does).");
        string photos = fx.Photos();
        var index = ImageIndex.Open(fx.NewIndexDir(), fx.Model, new ImageIndexOptions { ExactBelow = 0 });
        index.Update(IndexSource.FromFolder(photos));
        const string text = "A blackbird.";
        var expected = index.Search(SearchQuery.ForText(text), new SearchOptions { K = 12 }).Select(h => h.Path).ToList();
        await using var app = ServeCommand.Build(index, "http://127.0.0.1:0");
        await app.StartAsync();
        string url = app.Urls.First();
        output.WriteLine($"serving on {url}");
        string profile = Path.Combine(fx.Root, $"chromium-{Guid.NewGuid():N}");
        await using var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = Chromium, Headless = true, UserDataDir = profile,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
        });
        await using var page = await browser.NewPageAsync();
        await page.GoToAsync(url + "/", WaitUntilNavigation.Networkidle0);
        Assert.Equal("MLNet.Align image search", await page.GetTitleAsync());

        await page.TypeAsync("#q", text);
        await page.Keyboard.PressAsync("Enter");
        await page.WaitForFunctionAsync("() => document.querySelectorAll('figure.hit').length >= 12");
        var shown = await page.EvaluateExpressionAsync<string[]>("Array.from(document.querySelectorAll('figure.hit')).map(f => f.dataset.path)");
        Assert.Equal(expected, shown);
        // The thumbnails are real images served by the API.
        await page.WaitForFunctionAsync("() => Array.from(document.querySelectorAll('figure.hit img')).every(i => i.complete && i.naturalWidth > 0)");
        Assert.Contains("12 results", await page.EvaluateExpressionAsync<string>("document.getElementById('status').textContent"));

        string upload = Directory.GetFiles(photos, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ElementAt(20);
        var input = await page.QuerySelectorAsync("#upload");
        await input.UploadFileAsync(upload);
        await page.WaitForFunctionAsync($"() => document.getElementById('status').textContent.includes({System.Text.Json.JsonSerializer.Serialize(Path.GetFileName(upload))})");
        var first = await page.EvaluateExpressionAsync<string>("document.querySelector('figure.hit').dataset.path");
        var score = await page.EvaluateExpressionAsync<float>("parseFloat(document.querySelector('figure.hit').dataset.score)");
        Assert.Equal(upload, first);
        Assert.True(score > 0.999f, $"score {score}");
        await page.ScreenshotAsync(Path.Combine(Path.GetTempPath(), "mlnet-align-search-page.png"));

        // The API refuses bad requests with a reason.
        using var http = new HttpClient();
        var bad = await http.GetAsync(url + "/api/search");
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("q (the text to search for) is required", await bad.Content.ReadAsStringAsync());
        var notImage = await http.PostAsync(url + "/api/search", new MultipartFormDataContent { { new ByteArrayContent([1, 2, 3]), "image", "x.png" } });
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, notImage.StatusCode);
        Assert.Contains("cannot be decoded", await notImage.Content.ReadAsStringAsync());
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync(url + "/api/thumbnail/999999")).StatusCode);
        await app.StopAsync();
    }

    [Fact]
    public async Task An_upload_takes_k_and_q_from_the_form_or_the_query_string()
    {
        string photos = fx.Photos();
        var index = ImageIndex.Open(fx.NewIndexDir(), fx.Model, new ImageIndexOptions());
        index.Update(IndexSource.FromFolder(photos));
        string upload = Directory.GetFiles(photos, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ElementAt(7);
        await using var app = ServeCommand.Build(index, "http://127.0.0.1:0");
        await app.StartAsync();
        string url = app.Urls.First();
        using var http = new HttpClient();
        async Task<(System.Net.HttpStatusCode Status, string Body)> Post(string query, params (string Name, string Value)[] fields)
        {
            var form = new MultipartFormDataContent { { new ByteArrayContent(File.ReadAllBytes(upload)), "image", Path.GetFileName(upload) } };
            foreach (var (name, value) in fields) form.Add(new StringContent(value), name);
            var response = await http.PostAsync(url + "/api/search" + query, form);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        static string[] Paths(string body) => System.Text.Json.JsonDocument.Parse(body).RootElement.EnumerateArray().Select(e => e.GetProperty("path").GetString()!).ToArray();

        var (status, body) = await Post("?k=3");
        Assert.Equal(System.Net.HttpStatusCode.OK, status);
        Assert.Equal(3, Paths(body).Length);
        Assert.Equal(upload, Paths(body)[0]);
        Assert.Equal(5, Paths((await Post("?k=3", ("k", "5"))).Body).Length); // the form wins
        Assert.Equal(10, Paths((await Post("")).Body).Length);

        var mixed = index.Search(SearchQuery.ForImageBytes(File.ReadAllBytes(upload)).AndText("A blackbird."), new SearchOptions { K = 4 }).Select(h => h.Path);
        Assert.Equal(mixed, Paths((await Post("?k=4&q=A%20blackbird.")).Body));

        (status, body) = await Post("?k=three");
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, status);
        Assert.Contains("k must be a whole number of results; got 'three'", body);
        await app.StopAsync();
    }
}

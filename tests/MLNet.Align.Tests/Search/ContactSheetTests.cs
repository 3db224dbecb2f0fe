using MLNet.Align.Demo;
using SkiaSharp;

namespace MLNet.Align.Tests.Search;

/// <summary>The demo's search contact sheet: one row per query, its hits drawn as thumbnails.</summary>
public class ContactSheetTests
{
    [Fact]
    public void Each_query_is_a_row_of_its_hits_thumbnails()
    {
        var imgs = FixtureFeatures.ImagePaths;
        var queries = new[]
        {
            new DemoSearchQuery("\"a bird\"", imgs.Take(5).Select((p, i) => new DemoSearchHit(p, 0.5f - i * 0.01f)).ToList()),
            new DemoSearchQuery("image x.png", imgs.Skip(5).Take(3).Select(p => new DemoSearchHit(p, 0.3f)).ToList()),
        };
        string path = Path.Combine(Path.GetTempPath(), $"sheet-{Guid.NewGuid():N}.png");
        try
        {
            DemoSearch.DrawContactSheet(queries, path);
            using var bmp = SKBitmap.Decode(path);
            Assert.Equal(250 + 5 * 138 + 10, bmp.Width);
            Assert.Equal(2 * (158 + 10) + 10, bmp.Height);
            // The first thumbnail cell of each row holds a real image (not all white); the empty 4th cell of row 2 is white.
            Assert.True(NonWhite(bmp, 250, 10, 128) > 500);
            Assert.True(NonWhite(bmp, 250, 10 + 168, 128) > 500);
            Assert.Equal(0, NonWhite(bmp, 250 + 3 * 138, 10 + 168, 128));
        }
        finally { File.Delete(path); }
    }

    private static int NonWhite(SKBitmap b, int x0, int y0, int size)
    {
        int n = 0;
        for (int y = y0; y < y0 + size; y++)
            for (int x = x0; x < x0 + size; x++)
            {
                var c = b.GetPixel(x, y);
                if (c.Red < 240 || c.Green < 240 || c.Blue < 240) n++;
            }
        return n;
    }
}

using System.Text.Json;
using MLNet.Align.Charts;
using ScottPlot;

// Usage: mlnet-align-plots SPEC.json  (a JSON array of PlotSpec). Exit 0 when every chart was written.
if (args.Length != 1 || !File.Exists(args[0]))
{
    Console.Error.WriteLine("usage: mlnet-align-plots SPEC.json (a JSON array of chart specs)");
    return 2;
}
var specs = JsonSerializer.Deserialize<PlotSpec[]>(File.ReadAllText(args[0]), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })
            ?? throw new InvalidDataException($"{args[0]}: empty spec");
foreach (var spec in specs)
{
    var plot = spec.Kind switch
    {
        "heatmap" => Charts.Heatmap(spec),
        "bars" => Charts.GroupedBars(spec),
        "lines" => Charts.Lines(spec),
        "contact" => null,
        _ => throw new InvalidDataException($"{args[0]}: unknown chart kind '{spec.Kind}' (heatmap | bars | lines | contact)"),
    };
    if (plot is null) ContactSheet.Save(spec);
    else Charts.Save(plot, spec);
}
return 0;

internal static class Charts
{
    public static Plot Heatmap(PlotSpec s)
    {
        var values = s.Values ?? throw new InvalidDataException($"{s.Path}: heatmap without values");
        int rows = values.Length, cols = rows == 0 ? 0 : values[0].Length;
        var rowLabels = s.RowLabels ?? []; var columnLabels = s.ColumnLabels ?? [];
        var plot = new Plot();
        // Cells drawn as rectangles (ScottPlot's Heatmap plottable left single-column grids blank); row 0 on top;
        // values printed in the cells, so no colour bar.
        var colormap = new ScottPlot.Colormaps.Viridis();
        var finite = values.SelectMany(r => r).Where(v => v.HasValue && double.IsFinite(v.Value)).Select(v => v!.Value).DefaultIfEmpty(0).ToArray();
        double max = finite.Max(), min = finite.Min();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                if (values[r][c] is not double v || !double.IsFinite(v)) continue;
                double t = max > min ? (v - min) / (max - min) : 0.5;
                double yc = rows - 1 - r;
                var rect = plot.Add.Rectangle(c - 0.5, c + 0.5, yc - 0.5, yc + 0.5);
                rect.FillColor = colormap.GetColor(t);
                rect.LineWidth = 0;
                var text = plot.Add.Text(v.ToString(s.Format, System.Globalization.CultureInfo.InvariantCulture), c, yc);
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontSize = Math.Clamp(220f / Math.Max(rows, cols), 8f, 16f);
                text.LabelFontColor = t > 0.6 ? Colors.Black : Colors.White;
            }
        plot.Grid.IsVisible = false;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, cols).Select(c => (double)c).ToArray(), columnLabels);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, rows).Select(r => (double)(rows - 1 - r)).ToArray(), rowLabels);
        int longestColumn = columnLabels.DefaultIfEmpty("").Max(l => l.Length);
        int labelWidth = 8 * rowLabels.DefaultIfEmpty("").Max(l => l.Length);
        if (s.Width <= 0) s.Width = Math.Max(Math.Max(480, TitleWidth(s)), 80 + labelWidth + 90 * cols);
        // Rotate the column labels only when the longest does not fit its column (about 8 px a character).
        bool rotate = longestColumn * 8 > 0.9 * (s.Width - 80 - labelWidth) / Math.Max(1, cols);
        if (rotate)
        {
            plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
            plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
            // ScottPlot sizes the axis panel for horizontal labels; a 45-degree label needs about 0.71 x its length.
            plot.Axes.Bottom.MinimumSize = 20 + (float)(0.71 * 8 * longestColumn);
        }
        plot.Axes.SetLimits(-0.5, cols - 0.5, -0.5, rows - 0.5);
        Title(plot, s);
        if (s.XLabel.Length > 0) plot.XLabel(s.XLabel);
        if (s.YLabel.Length > 0) plot.YLabel(s.YLabel);
        if (s.Height <= 0) s.Height = Math.Max(360, 120 + 50 * rows + (rotate ? (int)(0.71 * 8 * longestColumn) : 0) + (s.Subtitle.Length > 0 ? 24 : 0));
        return plot;
    }

    public static Plot GroupedBars(PlotSpec s)
    {
        var series = s.Series ?? []; var groups = s.Groups ?? []; var values = s.SeriesValues ?? [];
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int m = series.Length;
        double barWidth = 0.8 / Math.Max(1, m);
        for (int k = 0; k < m; k++)
        {
            var bars = new List<Bar>();
            for (int g = 0; g < groups.Length; g++)
                bars.Add(new Bar
                {
                    Position = g + (k - (m - 1) / 2.0) * barWidth, Value = values[k][g], Size = barWidth * 0.95, FillColor = palette.GetColor(k), LineWidth = 0,
                    Label = s.ValueLabels ? FormatValue(values[k][g], s) : "",
                });
            var plottable = plot.Add.Bars(bars);
            if (m > 1) plottable.LegendText = series[k];
            plottable.ValueLabelStyle.FontSize = m * groups.Length > 16 ? 9 : 11;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(0, groups.Length).Select(g => (double)g).ToArray(), groups);
        if (s.Percent)
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = v => (100 * v).ToString("0", System.Globalization.CultureInfo.InvariantCulture) + "%" };
        double top = values.SelectMany(v => v).DefaultIfEmpty(1).Max();
        plot.Axes.SetLimits(-0.5, groups.Length - 0.5, 0, Math.Max(top, 1e-9) * 1.12);
        // Legend beside the plot area, never over a bar; none for a single series (the title names it).
        if (m > 1) plot.ShowLegend(Edge.Right);
        else plot.HideLegend();
        Title(plot, s);
        plot.YLabel(s.YLabel);
        if (s.XLabel.Length > 0) plot.XLabel(s.XLabel);
        int legendWidth = m > 1 ? 40 + 8 * series.DefaultIfEmpty("").Max(x => x.Length) : 0;
        if (s.Width <= 0) s.Width = Math.Max(Math.Max(640, TitleWidth(s)), Math.Min(1400, 34 * groups.Length * Math.Max(2, m) + 160 + legendWidth));
        if (s.Height <= 0) s.Height = 480;
        return plot;
    }

    public static Plot Lines(PlotSpec s)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach (var line in s.Lines ?? [])
        {
            var ys = s.LogY ? line.Y.Select(v => Math.Log10(Math.Max(v, 1e-12))).ToArray() : line.Y;
            var sc = plot.Add.Scatter(line.X, ys, palette.GetColor(i++));
            sc.LegendText = line.Name;
            sc.MarkerSize = line.X.Length > 50 ? 0 : 4;
            sc.LineWidth = 2;
            if (line.RightAxis) sc.Axes.YAxis = plot.Axes.Right;
        }
        if (s.Y2Label.Length > 0) plot.Axes.Right.Label.Text = s.Y2Label;
        if (s.LogY)
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                LabelFormatter = v => Math.Pow(10, v).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
            };
        // Legend below the plot area, never over a curve.
        if ((s.Lines?.Length ?? 0) > 1) plot.ShowLegend(Edge.Bottom);
        Title(plot, s);
        plot.XLabel(s.XLabel);
        plot.YLabel(s.LogY ? s.YLabel + " (log)" : s.YLabel);
        if (s.Width <= 0) s.Width = 800;
        if (s.Height <= 0) s.Height = 480;
        return plot;
    }

    /// <summary>Title, with the subtitle as a second line.</summary>
    private static void Title(Plot plot, PlotSpec s) => plot.Title(s.Subtitle.Length > 0 ? s.Title + "\n" + s.Subtitle : s.Title);

    /// <summary>Pixels the title and its subtitle line need (both bold, about 11 px a character).</summary>
    private static int TitleWidth(PlotSpec s) => 60 + 11 * Math.Max(s.Title.Length, s.Subtitle.Length);

    private static string FormatValue(double v, PlotSpec s)
        => s.Percent ? (100 * v).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) : v.ToString(s.Format, System.Globalization.CultureInfo.InvariantCulture);

    public static void Save(Plot plot, PlotSpec s)
    {
        var full = System.IO.Path.GetFullPath(s.Path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        var bytes = plot.GetImageBytes(s.Width, s.Height, ImageFormat.Png);
        var tmp = full + $".{Environment.ProcessId}.tmp";
        try
        {
            File.WriteAllBytes(tmp, bytes);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}

/// <summary>A contact sheet: a grid of images, each with its text lines underneath (e.g. truth and top-3 scores),
/// framed green or red when the item says whether it was right. Drawn with SkiaSharp and ScottPlot's font.</summary>
internal static class ContactSheet
{
    public static void Save(PlotSpec s)
    {
        var items = s.Items ?? throw new InvalidDataException($"{s.Path}: contact sheet without items");
        if (items.Length == 0) throw new InvalidDataException($"{s.Path}: contact sheet with no items");
        const int thumb = 160, pad = 12, lineHeight = 17;
        int cols = s.Columns > 0 ? s.Columns : Math.Min(items.Length, 6);
        int rows = (items.Length + cols - 1) / cols;
        int lines = items.Max(i => i.Lines.Length);
        int cellW = thumb + 2 * pad + 40, cellH = thumb + pad * 2 + lines * lineHeight;
        int header = s.Subtitle.Length > 0 ? 62 : 40;
        int width = s.Width > 0 ? s.Width : Math.Max(cols * cellW, 9 * Math.Max(s.Title.Length, s.Subtitle.Length) + 40);
        int height = s.Height > 0 ? s.Height : header + rows * cellH + pad;
        using var surface = SkiaSharp.SKSurface.Create(new SkiaSharp.SKImageInfo(width, height)) ?? throw new InvalidOperationException($"{s.Path}: cannot allocate a {width} x {height} image");
        var canvas = surface.Canvas;
        canvas.Clear(SkiaSharp.SKColors.White);
        using var typeface = Fonts.GetTypeface(Fonts.Default, false, false);
        using var bold = Fonts.GetTypeface(Fonts.Default, true, false);
        using var titleFont = new SkiaSharp.SKFont(bold, 17);
        using var textFont = new SkiaSharp.SKFont(typeface, 12.5f);
        using var ink = new SkiaSharp.SKPaint { Color = SkiaSharp.SKColors.Black, IsAntialias = true };
        using var grey = new SkiaSharp.SKPaint { Color = new SkiaSharp.SKColor(90, 90, 90), IsAntialias = true };
        canvas.DrawText(s.Title, pad, 24, SkiaSharp.SKTextAlign.Left, titleFont, ink);
        if (s.Subtitle.Length > 0) canvas.DrawText(s.Subtitle, pad, 48, SkiaSharp.SKTextAlign.Left, textFont, grey);
        for (int i = 0; i < items.Length; i++)
        {
            float x = (i % cols) * cellW + pad, y = header + (i / cols) * cellH;
            var frame = new SkiaSharp.SKRect(x + 20 - 3, y - 3, x + 20 + thumb + 3, y + thumb + 3);
            if (items[i].Correct is bool ok)
            {
                using var framePaint = new SkiaSharp.SKPaint { Color = ok ? new SkiaSharp.SKColor(40, 160, 60) : new SkiaSharp.SKColor(200, 40, 40), Style = SkiaSharp.SKPaintStyle.Stroke, StrokeWidth = 4 };
                canvas.DrawRect(frame, framePaint);
            }
            using (var bitmap = SkiaSharp.SKBitmap.Decode(items[i].Path) ?? throw new InvalidDataException($"{s.Path}: cannot decode image '{items[i].Path}'"))
            using (var image = SkiaSharp.SKImage.FromBitmap(bitmap))
            {
                // Fit inside the square, aspect kept; small images (28 x 28 MNIST) scale with nearest neighbour.
                float scale = Math.Min((float)thumb / bitmap.Width, (float)thumb / bitmap.Height);
                float w = bitmap.Width * scale, h = bitmap.Height * scale;
                var dest = SkiaSharp.SKRect.Create(x + 20 + (thumb - w) / 2, y + (thumb - h) / 2, w, h);
                var sampling = bitmap.Width < 64 ? new SkiaSharp.SKSamplingOptions(SkiaSharp.SKFilterMode.Nearest) : new SkiaSharp.SKSamplingOptions(SkiaSharp.SKFilterMode.Linear, SkiaSharp.SKMipmapMode.Linear);
                canvas.DrawImage(image, dest, sampling);
            }
            for (int l = 0; l < items[i].Lines.Length; l++)
                canvas.DrawText(Fit(items[i].Lines[l], textFont, cellW - 8), x, y + thumb + pad + 4 + l * lineHeight, SkiaSharp.SKTextAlign.Left, textFont, l == 0 ? ink : grey);
        }
        using var snapshot = surface.Snapshot();
        using var data = snapshot.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
        var full = System.IO.Path.GetFullPath(s.Path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        var tmp = full + $".{Environment.ProcessId}.tmp";
        try
        {
            File.WriteAllBytes(tmp, data.ToArray());
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>The text, shortened with "..." at the end when wider than <paramref name="max"/> pixels.</summary>
    private static string Fit(string text, SkiaSharp.SKFont font, float max)
    {
        if (font.MeasureText(text) <= max) return text;
        while (text.Length > 1 && font.MeasureText(text + "...") > max) text = text[..^1];
        return text + "...";
    }
}

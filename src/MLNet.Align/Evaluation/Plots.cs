using MLNet.Align.Similarity;
using ScottPlot;

namespace MLNet.Align.Evaluation;

/// <summary>
/// PNG charts for reports (ScottPlot 5): heatmaps (CKA grid, confusion matrix), grouped bars (method × metric) and
/// line charts (training curves). Files are written atomically (temp file + rename); the folder is created if needed.
/// </summary>
public static class Plots
{
    /// <summary>A heatmap of <paramref name="values"/> [rows, cols] with each cell's value printed in it.</summary>
    /// <param name="path">Output .png path.</param>
    /// <param name="values">Cell values; NaN cells are left blank.</param>
    /// <param name="rowLabels">Row labels [rows] (left axis, top to bottom).</param>
    /// <param name="columnLabels">Column labels [cols] (bottom axis).</param>
    /// <param name="title">Chart title.</param>
    /// <param name="format">Cell text format (e.g. "0.000", "0").</param>
    /// <param name="width">Pixels; 0 = sized from the grid and title.</param>
    /// <param name="height">Pixels; 0 = sized from the grid.</param>
    /// <exception cref="ArgumentException">Label counts do not match the grid.</exception>
    public static void Heatmap(string path, double[,] values, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels,
        string title, string format = "0.000", int width = 0, int height = 0)
    {
        int rows = values.GetLength(0), cols = values.GetLength(1);
        if (rowLabels.Count != rows || columnLabels.Count != cols)
            throw new ArgumentException($"Grid is [{rows}, {cols}] but got {rowLabels.Count} row and {columnLabels.Count} column labels.");
        var plot = new Plot();
        // Cells are drawn as rectangles (ScottPlot's Heatmap plottable left single-column grids blank); cell (r, c) is
        // centred at (c, rows - 1 - r) so row 0 is on top. Values are printed in the cells, so no colour bar.
        var colormap = new ScottPlot.Colormaps.Viridis();
        double finiteMax = values.Cast<double>().Where(double.IsFinite).DefaultIfEmpty(0).Max();
        double finiteMin = values.Cast<double>().Where(double.IsFinite).DefaultIfEmpty(0).Min();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                double v = values[r, c];
                if (!double.IsFinite(v)) continue;
                double t = finiteMax > finiteMin ? (v - finiteMin) / (finiteMax - finiteMin) : 0.5;
                double yc = rows - 1 - r;
                var rect = plot.Add.Rectangle(c - 0.5, c + 0.5, yc - 0.5, yc + 0.5);
                rect.FillColor = colormap.GetColor(t);
                rect.LineWidth = 0;
                var text = plot.Add.Text(v.ToString(format, System.Globalization.CultureInfo.InvariantCulture), c, yc);
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontSize = Math.Clamp(220f / Math.Max(rows, cols), 8f, 16f);
                text.LabelFontColor = t > 0.6 ? Colors.Black : Colors.White;
            }
        plot.Grid.IsVisible = false;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, cols).Select(c => (double)c).ToArray(), columnLabels.ToArray());
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, rows).Select(r => (double)(rows - 1 - r)).ToArray(), rowLabels.ToArray());
        if (cols > 6) plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
        if (cols > 6) plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.SetLimits(-0.5, cols - 0.5, -0.5, rows - 0.5);
        plot.Title(title);
        int labelWidth = 8 * rowLabels.DefaultIfEmpty("").Max(l => l.Length);
        Save(plot, path, width > 0 ? width : Math.Max(Math.Max(480, 11 * title.Length + 40), 80 + labelWidth + 90 * cols), height > 0 ? height : Math.Max(360, 120 + 50 * rows + (cols > 6 ? 80 : 0)));
    }

    /// <summary>The stage-1 CKA heatmap: image encoders (rows) × text encoders (columns) of <paramref name="metric"/>.</summary>
    public static void EncoderPairHeatmap(string path, EncoderPairReport report, PairMetric? metric = null)
    {
        var (imgs, txts, grid) = report.Grid(metric);
        Heatmap(path, grid, imgs, txts, $"{metric ?? report.Metric} on {report.N} probe pairs (image × text encoder)");
    }

    /// <summary>A confusion-matrix heatmap (rows = true class, columns = predicted), counts or row-normalised.</summary>
    public static void ConfusionMatrix(string path, ZeroShotResult result, string? title = null, bool rowNormalize = false)
    {
        int c = result.Classes;
        var grid = new double[c, c];
        for (int r = 0; r < c; r++)
        {
            double total = rowNormalize ? Math.Max(1, result.Confusion[r].Sum()) : 1;
            for (int k = 0; k < c; k++) grid[r, k] = result.Confusion[r][k] / total;
        }
        Heatmap(path, grid, result.ClassNames, result.ClassNames,
            title ?? $"Confusion (top-1 {result.Top1:P1}, n = {result.N}); rows true, columns predicted",
            rowNormalize ? "0.00" : "0");
    }

    /// <summary>Grouped bars: one group per metric, one bar per method (e.g. methods × {i2t R@1, ..., t2i R@10}).</summary>
    /// <param name="path">Output .png path.</param>
    /// <param name="methods">Series names [m] (legend).</param>
    /// <param name="groups">Group labels [g] (x axis).</param>
    /// <param name="values">values[m][g].</param>
    /// <param name="title">Chart title.</param>
    /// <param name="yLabel">Y axis label.</param>
    /// <param name="width">Pixels; 0 = sized from the number of bars.</param>
    /// <param name="height">Pixels.</param>
    /// <exception cref="ArgumentException">values is not [methods][groups].</exception>
    public static void GroupedBars(string path, IReadOnlyList<string> methods, IReadOnlyList<string> groups, IReadOnlyList<IReadOnlyList<double>> values,
        string title, string yLabel = "", int width = 0, int height = 480)
    {
        if (values.Count != methods.Count || values.Any(v => v.Count != groups.Count))
            throw new ArgumentException($"values must be [{methods.Count} methods][{groups.Count} groups].");
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int m = methods.Count;
        double barWidth = 0.8 / Math.Max(1, m);
        for (int s = 0; s < m; s++)
        {
            var bars = new List<Bar>();
            for (int g = 0; g < groups.Count; g++)
                bars.Add(new Bar
                {
                    Position = g + (s - (m - 1) / 2.0) * barWidth,
                    Value = values[s][g],
                    Size = barWidth * 0.95,
                    FillColor = palette.GetColor(s),
                    LineWidth = 0,
                });
            var series = plot.Add.Bars(bars);
            series.LegendText = methods[s];
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, groups.Count).Select(g => (double)g).ToArray(), groups.ToArray());
        plot.Axes.Margins(bottom: 0);
        plot.ShowLegend(Alignment.UpperRight);
        plot.Title(title);
        plot.YLabel(yLabel);
        Save(plot, path, width > 0 ? width : Math.Max(640, 90 * groups.Count * Math.Max(1, m) / 2 + 200), height);
    }

    /// <summary>Line chart of named series (x, y), e.g. loss curves.</summary>
    /// <exception cref="ArgumentException">A series' x and y lengths differ.</exception>
    public static void Lines(string path, IReadOnlyDictionary<string, (double[] X, double[] Y)> series, string title, string xLabel, string yLabel,
        bool logY = false, int width = 800, int height = 480)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach (var (name, (x, y)) in series)
        {
            if (x.Length != y.Length) throw new ArgumentException($"Series '{name}' has {x.Length} x values and {y.Length} y values.");
            var ys = logY ? y.Select(v => Math.Log10(Math.Max(v, 1e-12))).ToArray() : y;
            var sc = plot.Add.Scatter(x, ys, palette.GetColor(i++));
            sc.LegendText = name;
            sc.MarkerSize = x.Length > 50 ? 0 : 4;
            sc.LineWidth = 2;
        }
        if (logY)
        {
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                LabelFormatter = v => Math.Pow(10, v).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
            };
        }
        if (series.Count > 1) plot.ShowLegend(Alignment.UpperRight);
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(logY ? yLabel + " (log)" : yLabel);
        Save(plot, path, width, height);
    }

    private static void Save(Plot plot, string path, int width, int height)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var bytes = plot.GetImageBytes(width, height, ImageFormat.Png);
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
